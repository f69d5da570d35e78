"""Creating, finding, changing and deleting gallery subjects."""

from typing import Literal

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from app.audit.actor import Actor
from app.audit.trail import record
from app.db.engine import session_scope
from app.db.tables import Face, Photo, Subject
from app.db.types import utc_now
from app.gallery.changes import gallery_write
from app.gallery.context import GalleryContext
from app.gallery.errors import DuplicateExternalId, SubjectNotFound
from app.schemas import SubjectCreate, SubjectOut, SubjectPage, SubjectUpdate

SubjectRemoval = Literal["subject_delete", "subject_purge"]


def create_subject(context: GalleryContext, request: SubjectCreate, *, by: Actor) -> SubjectOut:
    with gallery_write(context.sessions) as write:
        session = write.session
        _ensure_external_id_free(session, request.external_id)
        subject = Subject(
            display_name=request.display_name,
            external_id=request.external_id,
            details=dict(request.details),
            retain_until=request.retain_until,
        )
        session.add(subject)
        session.flush()
        record(session, by, "subject_create", subject_ids=[subject.id], details=_audited(subject))
        return _view(session, subject)


def get_subject(context: GalleryContext, subject_id: int) -> SubjectOut:
    with session_scope(context.sessions) as session:
        return _view(session, require_subject(session, subject_id))


def list_subjects(
    context: GalleryContext, *, query: str | None, offset: int, limit: int
) -> SubjectPage:
    """Subjects by id; `query` matches part of the name or the whole external id, letters'
    case aside. `%` and `_` in it are literal characters, not wildcards."""
    with session_scope(context.sessions) as session:
        statement = select(Subject)
        if query:
            statement = statement.where(
                or_(
                    Subject.display_name.ilike(f"%{_escape_like(query)}%", escape="\\"),
                    func.lower(Subject.external_id) == query.lower(),
                )
            )
        total = session.scalar(select(func.count()).select_from(statement.subquery())) or 0
        page = session.scalars(statement.order_by(Subject.id).offset(offset).limit(limit))
        items = [_view(session, subject) for subject in page]
        return SubjectPage(items=items, total=total, offset=offset, limit=limit)


def update_subject(
    context: GalleryContext, subject_id: int, changes: SubjectUpdate, *, by: Actor
) -> SubjectOut:
    sent = changes.model_fields_set
    with gallery_write(context.sessions) as write:
        session = write.session
        subject = require_subject(session, subject_id)
        if "external_id" in sent and changes.external_id != subject.external_id:
            _ensure_external_id_free(session, changes.external_id, besides=subject_id)
            subject.external_id = changes.external_id
        if "display_name" in sent and changes.display_name is not None:
            subject.display_name = changes.display_name
        if "details" in sent:
            subject.details = dict(changes.details or {})
        if "retain_until" in sent:
            subject.retain_until = changes.retain_until
        session.flush()
        audited = {**_audited(subject), "fields": sorted(sent)}
        record(session, by, "subject_update", subject_ids=[subject_id], details=audited)
        return _view(session, subject)


def delete_subject(
    context: GalleryContext,
    subject_id: int,
    *,
    by: Actor,
    action: SubjectRemoval = "subject_delete",
    only_if_expired: bool = False,
) -> bool:
    """Remove the subject, its photos, faces, embeddings, files and index entries.

    `action` says why in the audit trail: deleted by a caller, or purged once
    expired. With `only_if_expired`, a subject whose `retain_until` is not past
    (extended since it was found expired) is kept; the answer says if it went.
    """
    with gallery_write(context.sessions) as write:
        session = write.session
        subject = require_subject(session, subject_id)
        if only_if_expired and not (subject.retain_until and subject.retain_until <= utc_now()):
            return False
        faces = session.execute(
            select(Face.id, Face.chip_path).where(Face.subject_id == subject_id)
        ).all()
        photo_paths = session.scalars(
            select(Photo.stored_path).where(Photo.subject_id == subject_id)
        ).all()
        session.delete(subject)
        for face_id, _ in faces:
            write.face_removed(face_id=face_id, subject_id=subject_id)
        details = {**_audited(subject), "faces": len(faces), "photos": len(photo_paths)}
        record(session, by, action, subject_ids=[subject_id], details=details)
    context.files.delete([*photo_paths, *(chip for _, chip in faces)])
    context.follower.current()
    return True


def _audited(subject: Subject) -> dict[str, object]:
    """What the trail keeps of a subject: its ids and retention, never its name or details,
    which must go when the subject does."""
    return {
        "subject_id": subject.id,
        "external_id": subject.external_id,
        "retain_until": subject.retain_until.isoformat() if subject.retain_until else None,
    }


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def subject_id_for(context: GalleryContext, external_id: str) -> int | None:
    """The id of the subject with `external_id`, letters' case aside."""
    with session_scope(context.sessions) as session:
        return session.scalar(
            select(Subject.id).where(func.lower(Subject.external_id) == external_id.lower())
        )


def require_subject(session: Session, subject_id: int) -> Subject:
    subject = session.get(Subject, subject_id)
    if subject is None:
        raise SubjectNotFound(subject_id)
    return subject


def _ensure_external_id_free(
    session: Session, external_id: str | None, *, besides: int | None = None
) -> None:
    """Refuse an external id another subject has, letters' case aside: `DUP-1` and `dup-1`
    name one record in every system Lineup's users keep. The caller holds the gallery's
    lock, so no other writer can take the id between this check and the commit."""
    if external_id is None:
        return
    # The exact value too: SQLite's lower() folds ASCII letters only, so `Ø` would
    # otherwise slip past this check and fail the column's unique constraint.
    same = or_(
        func.lower(Subject.external_id) == external_id.lower(),
        Subject.external_id == external_id,
    )
    taken = session.scalar(select(Subject.id).where(same, Subject.id != (besides or 0)))
    if taken is not None:
        raise DuplicateExternalId(external_id)


def _view(session: Session, subject: Subject) -> SubjectOut:
    face_count = session.scalar(select(func.count(Face.id)).where(Face.subject_id == subject.id))
    return SubjectOut(
        id=subject.id,
        external_id=subject.external_id,
        display_name=subject.display_name,
        details=dict(subject.details),
        retain_until=subject.retain_until,
        face_count=face_count or 0,
        created_at=subject.created_at,
        updated_at=subject.updated_at,
    )
