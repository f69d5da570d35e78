"""The ORM tables: subjects, their photos, faces, embeddings and jobs; keys, sessions and
the audit trail.

The database is the source of truth; the vector index is rebuilt from the
`embeddings` rows of the active model version, and every change to what can be
searched is also written to the `gallery_changes` log, in the same transaction,
so each process's in-memory index can follow the database (see
`app.gallery.changes`). Ids are never reused: SQLite tables use AUTOINCREMENT
(PostgreSQL's sequences never go back), so an old link, a log row or a record
naming an id can never come to mean another person. Foreign keys cascade in the
database itself (`ON DELETE CASCADE`), so deleting a subject with one
statement removes its photos, faces and embeddings on every backend.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, ClassVar

from sqlalchemy import (
    JSON,
    BigInteger,
    CheckConstraint,
    Double,
    ForeignKey,
    Index,
    LargeBinary,
    MetaData,
    String,
    Text,
    UniqueConstraint,
    false,
    func,
    text,
)
from sqlalchemy.ext.mutable import MutableDict
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from app.db.types import UtcDateTime, utc_now

# Explicit constraint names keep migrations identical across backends and let
# Alembic's SQLite batch mode find constraints by name when it rebuilds tables.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    """Declarative base whose metadata names every constraint and index."""

    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map: ClassVar[dict[Any, Any]] = {datetime: UtcDateTime(), float: Double()}


# Children are owned by their parent; `passive_deletes` leaves the deleting to
# the database's ON DELETE CASCADE instead of loading every child row first.
_OWNED = "all, delete-orphan"


def _created_at() -> Mapped[datetime]:
    """A creation time set by Python, or by the database for rows inserted in raw SQL."""
    return mapped_column(default=utc_now, server_default=func.now())


class ModelVersion(Base):
    """One backbone at one exact set of weights, with its calibrated threshold.

    Every embedding points at the version that made it, so vectors from
    different weights are never compared. At most one version is active: the
    one that enrolment and probes use.
    """

    __tablename__ = "model_versions"
    __table_args__ = (
        UniqueConstraint("backbone", "weights_hash"),
        # A partial unique index: any number of inactive rows, one active row.
        Index(
            "uq_model_versions_active",
            "active",
            unique=True,
            sqlite_where=text("active"),
            postgresql_where=text("active"),
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    backbone: Mapped[str] = mapped_column(String(64))
    weights_hash: Mapped[str] = mapped_column(String(128))
    embedding_dim: Mapped[int]
    alignment: Mapped[str] = mapped_column(String(64))
    threshold: Mapped[float | None]
    active: Mapped[bool] = mapped_column(default=False, server_default=false())
    # While a reindex embeds faces under this version it renews this lease; rows of
    # an inactive version whose lease ran out, or whose builder (`app.gallery.owners`)
    # is known dead, were left by a reindex that died.
    building_until: Mapped[datetime | None]
    building_by: Mapped[str | None] = mapped_column(String(255))
    created_at: Mapped[datetime] = _created_at()


class Subject(Base):
    """A known person in the gallery.

    `details` is free-form JSON (notes, attributes) that Lineup stores but
    never interprets; in-place changes to it are tracked.
    """

    __tablename__ = "subjects"
    __table_args__ = ({"sqlite_autoincrement": True},)

    id: Mapped[int] = mapped_column(primary_key=True)
    external_id: Mapped[str | None] = mapped_column(String(128), unique=True)
    display_name: Mapped[str] = mapped_column(String(255))
    details: Mapped[dict[str, Any]] = mapped_column(MutableDict.as_mutable(JSON()), default=dict)
    # Past this time the purge job deletes the subject completely (`app.gallery.retention`).
    retain_until: Mapped[datetime | None] = mapped_column(index=True)
    created_at: Mapped[datetime] = _created_at()
    updated_at: Mapped[datetime] = mapped_column(
        default=utc_now, onupdate=utc_now, server_default=func.now()
    )

    photos: Mapped[list[Photo]] = relationship(
        back_populates="subject", cascade=_OWNED, passive_deletes=True
    )
    faces: Mapped[list[Face]] = relationship(viewonly=True)


class Photo(Base):
    """An image enrolled for a subject, kept on disk under the data directory.

    The same file (by SHA-256) is enrolled at most once per subject.
    """

    __tablename__ = "photos"
    __table_args__ = (UniqueConstraint("subject_id", "sha256"), {"sqlite_autoincrement": True})

    id: Mapped[int] = mapped_column(primary_key=True)
    subject_id: Mapped[int] = mapped_column(ForeignKey("subjects.id", ondelete="CASCADE"))
    sha256: Mapped[str] = mapped_column(String(64))
    original_filename: Mapped[str] = mapped_column(Text)
    stored_path: Mapped[str] = mapped_column(Text)
    size_bytes: Mapped[int]
    width: Mapped[int]
    height: Mapped[int]
    created_at: Mapped[datetime] = _created_at()

    subject: Mapped[Subject] = relationship(back_populates="photos")
    faces: Mapped[list[Face]] = relationship(
        back_populates="photo", cascade=_OWNED, passive_deletes=True
    )


class Face(Base):
    """One detected face in a photo, with the aligned chip cut from it.

    `subject_id` repeats the photo's subject so per-subject queries need no
    join; set it (or `subject`) to the photo's subject when creating a face.
    The box is in photo pixels; `landmarks` holds five [x, y] points in MTCNN
    order.
    """

    __tablename__ = "faces"
    __table_args__ = ({"sqlite_autoincrement": True},)

    id: Mapped[int] = mapped_column(primary_key=True)
    photo_id: Mapped[int] = mapped_column(ForeignKey("photos.id", ondelete="CASCADE"), index=True)
    subject_id: Mapped[int] = mapped_column(
        ForeignKey("subjects.id", ondelete="CASCADE"), index=True
    )
    x1: Mapped[float]
    y1: Mapped[float]
    x2: Mapped[float]
    y2: Mapped[float]
    landmarks: Mapped[list[list[float]]] = mapped_column(JSON())
    detection_probability: Mapped[float]
    quality: Mapped[float | None]
    chip_path: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = _created_at()

    photo: Mapped[Photo] = relationship(back_populates="faces")
    subject: Mapped[Subject] = relationship()
    embeddings: Mapped[list[Embedding]] = relationship(
        back_populates="face", cascade=_OWNED, passive_deletes=True
    )

    @property
    def box(self) -> tuple[float, float, float, float]:
        """The bounding box as (x1, y1, x2, y2)."""
        return (self.x1, self.y1, self.x2, self.y2)


class Embedding(Base):
    """A face's vector under one model version (float32, little-endian bytes).

    See `app.db.vectors` for packing and unpacking `vector`.
    """

    __tablename__ = "embeddings"
    __table_args__ = (
        UniqueConstraint("face_id", "model_version_id"),
        {"sqlite_autoincrement": True},
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    face_id: Mapped[int] = mapped_column(ForeignKey("faces.id", ondelete="CASCADE"))
    # No cascade: a model version that still has embeddings cannot be deleted.
    model_version_id: Mapped[int] = mapped_column(ForeignKey("model_versions.id"), index=True)
    vector: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = _created_at()

    face: Mapped[Face] = relationship(back_populates="embeddings")
    model_version: Mapped[ModelVersion] = relationship()


class Job(Base):
    """A long piece of admin work (reindex, retrain) run by the app's job worker.

    `status` moves queued → running → succeeded | failed | cancelled and never
    back. `heartbeat_at` is touched whenever the running job reports, so a
    stale one tells an operator the work is stuck. `parameters` and `result`
    are JSON the job's runner defines.
    """

    __tablename__ = "jobs"
    __table_args__ = (
        CheckConstraint(
            "status IN ('queued', 'running', 'succeeded', 'failed', 'cancelled')", name="status"
        ),
        CheckConstraint("progress >= 0 AND progress <= 1", name="progress"),
        {"sqlite_autoincrement": True},
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(32))
    status: Mapped[str] = mapped_column(String(16), index=True)
    progress: Mapped[float] = mapped_column(default=0.0, server_default=text("0"))
    message: Mapped[str] = mapped_column(Text, default="", server_default="")
    parameters: Mapped[dict[str, Any]] = mapped_column(JSON(), default=dict)
    result: Mapped[dict[str, Any] | None] = mapped_column(JSON())
    error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = _created_at()
    started_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]
    heartbeat_at: Mapped[datetime | None]
    cancel_requested: Mapped[bool] = mapped_column(default=False, server_default=false())
    # The process running it (`app.gallery.owners`): several processes run job workers.
    owner: Mapped[str | None] = mapped_column(String(255))


class GalleryHead(Base):
    """One row: the sequence number of the newest gallery change.

    Every transaction that changes the gallery updates this row first, which
    serialises those transactions on every backend (a row lock in PostgreSQL,
    the write lock in SQLite). Sequence numbers are therefore handed out in
    commit order, and a process that has seen change N has seen every change
    before it.
    """

    __tablename__ = "gallery_head"
    __table_args__ = (CheckConstraint("id = 1", name="single_row"),)

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    seq: Mapped[int] = mapped_column(BigInteger, default=0, server_default=text("0"))


class GalleryChange(Base):
    """One change to what can be searched, in commit order (see `GalleryHead`).

    `face_indexed`: the face got an embedding under `model_version_id`;
    `face_removed`: the face (and every embedding of it) is gone;
    `model_activated`: `model_version_id` is now the version searched with.
    No foreign keys: the log outlives the faces it names.
    """

    __tablename__ = "gallery_changes"
    __table_args__ = (
        CheckConstraint("kind IN ('face_indexed', 'face_removed', 'model_activated')", name="kind"),
    )

    seq: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    kind: Mapped[str] = mapped_column(String(24))
    face_id: Mapped[int | None] = mapped_column(BigInteger)
    subject_id: Mapped[int | None] = mapped_column(BigInteger)
    model_version_id: Mapped[int | None]
    created_at: Mapped[datetime] = _created_at()


class ApiKey(Base):
    """A credential for one client or person, with one role (`app.access.roles`).

    Only the SHA-256 of the whole key is kept: the key is 256 random bits, so a
    fast hash is as strong as a slow one, and a stolen table gives no key.
    `prefix` is the key's public start, to find the row without a scan.
    """

    __tablename__ = "api_keys"
    __table_args__ = (
        CheckConstraint("role IN ('viewer', 'investigator', 'enroller', 'admin')", name="role"),
        {"sqlite_autoincrement": True},
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    role: Mapped[str] = mapped_column(String(16))
    prefix: Mapped[str] = mapped_column(String(16), unique=True)
    secret_hash: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = _created_at()
    created_by: Mapped[str] = mapped_column(String(128))
    expires_at: Mapped[datetime | None]
    revoked_at: Mapped[datetime | None]
    last_used_at: Mapped[datetime | None]


class WebSession(Base):
    """A browser's login: the key it logged in with, kept server-side.

    The cookie holds a random token whose SHA-256 is `token_hash`; every
    replica finds the session here. It ends after `idle_timeout` without a
    request, at logout, or when its key is revoked or expires.
    """

    __tablename__ = "web_sessions"

    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    key_id: Mapped[int] = mapped_column(ForeignKey("api_keys.id", ondelete="CASCADE"), index=True)
    csrf_token: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = _created_at()
    last_seen_at: Mapped[datetime] = mapped_column(default=utc_now)


class RateBucket(Base):
    """A token bucket shared by every process: one per key (`key:ID`) and one per client
    address for failed logins (`login:ADDRESS`). Taking a token is one conditional
    UPDATE, atomic on every backend."""

    __tablename__ = "rate_buckets"

    name: Mapped[str] = mapped_column(String(128), primary_key=True)
    tokens: Mapped[float]
    updated: Mapped[float]
    """When `tokens` was last computed, in seconds since the epoch."""


class AuditHead(Base):
    """One row: the newest audit record's id and hash, and the anchor the oldest kept
    record chains from (all zeros until retention removes the first records).

    Every audit record updates this row first, which serialises records on every
    backend, so ids and hashes form one chain in commit order.
    """

    __tablename__ = "audit_head"
    __table_args__ = (CheckConstraint("id = 1", name="single_row"),)

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    last_id: Mapped[int] = mapped_column(BigInteger, default=0, server_default=text("0"))
    last_hash: Mapped[str] = mapped_column(String(64))
    anchor_id: Mapped[int] = mapped_column(BigInteger, default=0, server_default=text("0"))
    anchor_hash: Mapped[str] = mapped_column(String(64))


class AuditEvent(Base):
    """One audited action: who, when, from where, what, on whom, and what was answered.

    Append-only. Each record's `row_hash` covers its fields and the previous
    record's hash (`app.audit.chain`), so a changed, removed or inserted record
    breaks the chain where it happened. Free-form parts (target ids, image
    hashes, the answer) are one canonical JSON text, hashed exactly as stored.
    No foreign keys: the trail outlives the subjects and keys it names.
    """

    __tablename__ = "audit_events"
    __table_args__ = (
        Index("ix_audit_events_case_reference", "case_reference"),
        Index("ix_audit_events_action_at", "action", "at"),
        Index("ix_audit_events_key_name_at", "key_name", "at"),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    at: Mapped[str] = mapped_column(String(32), index=True)
    """ISO 8601 UTC with microseconds (`2026-12-02T20:08:13.123456Z`): text, so it is
    hashed and sorted exactly as stored on every backend."""
    key_name: Mapped[str] = mapped_column(String(128))
    role: Mapped[str] = mapped_column(String(16))
    client: Mapped[str] = mapped_column(String(64))
    request_id: Mapped[str] = mapped_column(String(64))
    action: Mapped[str] = mapped_column(String(32))
    outcome: Mapped[str] = mapped_column(String(16))
    case_reference: Mapped[str | None] = mapped_column(String(200))
    purpose: Mapped[str | None] = mapped_column(Text)
    model_version_id: Mapped[int | None]
    subject_ids: Mapped[str] = mapped_column(Text)
    """The subjects the action was about or answered with, as canonical JSON."""
    details: Mapped[str] = mapped_column(Text)
    prev_hash: Mapped[str] = mapped_column(String(64))
    row_hash: Mapped[str] = mapped_column(String(64))


class AuditSubject(Base):
    """Which audit records name which subject: "who searched for or enrolled this person"
    is an index lookup, not a scan of every record's JSON."""

    __tablename__ = "audit_subjects"

    audit_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("audit_events.id", ondelete="CASCADE"), primary_key=True
    )
    subject_id: Mapped[int] = mapped_column(BigInteger, primary_key=True, index=True)
