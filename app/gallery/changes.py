"""The gallery change log: every change to what can be searched, in commit order.

Several processes (service workers, replicas, `lineup enroll` beside a running
service) share one database, and each keeps its own in-memory index. Every
transaction that changes the gallery is a `gallery_write`: its first statement
takes the gallery's lock (an update of the one `gallery_head` row, a row lock in
PostgreSQL and the write lock in SQLite), and before it commits it appends what
it changed to `gallery_changes` under the next sequence numbers. Because the
lock is held to the commit, sequence numbers are handed out in commit order:
a process that has applied every change up to N has missed none before it, and
bringing an index up to date is one cheap `seq > N` query (see
`app.gallery.follower`).

Taking the lock first also keeps SQLite from refusing a writer outright: a
transaction that read before it wrote cannot wait for another writer in WAL
mode, it fails at once. Inside a `gallery_write` nothing may write through
another connection (a job's heartbeat, say): it would wait for this very lock.
"""

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Literal

from sqlalchemy import insert, select, update
from sqlalchemy.orm import Session, sessionmaker

from app.db.engine import session_scope
from app.db.tables import GalleryChange, GalleryHead

ChangeKind = Literal["face_indexed", "face_removed", "model_activated"]


@dataclass(frozen=True)
class Change:
    """One logged change; `seq` is 0 until it is recorded."""

    kind: ChangeKind
    face_id: int | None = None
    subject_id: int | None = None
    model_version_id: int | None = None
    seq: int = 0


@dataclass
class GalleryWrite:
    """A transaction that holds the gallery's lock and logs what it changes."""

    session: Session
    changes: list[Change] = field(default_factory=list)
    last_seq: int = 0
    """After the commit: the sequence number of its last change (the head it left)."""
    committed: bool = False

    def face_indexed(self, *, face_id: int, subject_id: int, model_version_id: int) -> None:
        """The face became searchable under `model_version_id`."""
        self.changes.append(Change("face_indexed", face_id, subject_id, model_version_id))

    def face_removed(self, *, face_id: int, subject_id: int) -> None:
        """The face and all its embeddings are gone."""
        self.changes.append(Change("face_removed", face_id, subject_id))

    def model_activated(self, *, model_version_id: int) -> None:
        """Searches now use `model_version_id`."""
        self.changes.append(Change("model_activated", model_version_id=model_version_id))

    def commit(self) -> int:
        """Record the changes and commit now, before the block ends; return `last_seq`.
        Nothing more may be written in the block."""
        self.last_seq = _record(self.session, self.changes)
        self.session.commit()
        self.committed = True
        return self.last_seq


@contextmanager
def gallery_write(sessions: sessionmaker[Session]) -> Iterator[GalleryWrite]:
    """A transaction that takes the gallery's lock first and logs its changes at commit."""
    with session_scope(sessions) as session:
        lock_gallery(session)
        write = GalleryWrite(session)
        yield write
        if not write.committed:
            write.last_seq = _record(session, write.changes)


def lock_gallery(session: Session) -> None:
    """Hold the gallery's lock until `session` commits or rolls back."""
    session.execute(update(GalleryHead).where(GalleryHead.id == 1).values(seq=GalleryHead.seq))


def latest_seq(session: Session) -> int:
    """The sequence number of the newest committed change (0 for none)."""
    return session.scalar(select(GalleryHead.seq).where(GalleryHead.id == 1)) or 0


def changes_after(session: Session, seq: int, *, upto: int) -> list[Change]:
    """The changes with `seq < number <= upto`, oldest first."""
    rows = session.scalars(
        select(GalleryChange)
        .where(GalleryChange.seq > seq, GalleryChange.seq <= upto)
        .order_by(GalleryChange.seq)
    )
    return [
        Change(
            kind=row.kind,  # type: ignore[arg-type]  # the table's check constraint holds it
            face_id=row.face_id,
            subject_id=row.subject_id,
            model_version_id=row.model_version_id,
            seq=row.seq,
        )
        for row in rows
    ]


def _record(session: Session, changes: list[Change]) -> int:
    """Append `changes` under the next sequence numbers; return the head after them."""
    if not changes:
        return latest_seq(session)
    last: int = session.execute(
        update(GalleryHead)
        .where(GalleryHead.id == 1)
        .values(seq=GalleryHead.seq + len(changes))
        .returning(GalleryHead.seq)
    ).scalar_one()
    first = last - len(changes) + 1
    session.execute(
        insert(GalleryChange),
        [
            {
                "seq": first + offset,
                "kind": change.kind,
                "face_id": change.face_id,
                "subject_id": change.subject_id,
                "model_version_id": change.model_version_id,
            }
            for offset, change in enumerate(changes)
        ],
    )
    return last
