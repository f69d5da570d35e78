"""Retention: a subject whose `retain_until` has passed is deleted completely.

Deleting goes through `delete_subject`, so rows, photos, chips and index
entries of every model version go together, each deletion logged for the
other processes' indexes and recorded in the audit trail as `subject_purge`.
"""

from sqlalchemy import select

from app.audit.actor import Actor
from app.db.engine import session_scope
from app.db.tables import Subject
from app.db.types import utc_now
from app.gallery.context import GalleryContext
from app.gallery.errors import SubjectNotFound
from app.gallery.subjects import delete_subject


def purge_expired(context: GalleryContext, *, by: Actor) -> list[int]:
    """Delete every subject whose `retain_until` is past; the ids deleted, in order.

    A subject deleted meanwhile by another process is skipped; one whose
    retention was extended meanwhile is kept, since each deletion checks again
    under the gallery's lock.
    """
    with session_scope(context.sessions) as session:
        expired = list(
            session.scalars(
                select(Subject.id).where(Subject.retain_until <= utc_now()).order_by(Subject.id)
            )
        )
    purged = []
    for subject_id in expired:
        try:
            deleted = delete_subject(
                context, subject_id, by=by, action="subject_purge", only_if_expired=True
            )
        except SubjectNotFound:
            continue
        if deleted:
            purged.append(subject_id)
    return purged
