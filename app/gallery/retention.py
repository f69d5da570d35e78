"""Retention: a subject whose `retain_until` has passed is deleted completely.

Deleting goes through `delete_subject`, so rows (embeddings of every model
version cascade with their faces), photos, chips and index entries go together,
each deletion logged for the other processes' indexes and recorded in the audit
trail as `subject_purge`.

The indexes on disk are snapshots: the active version's is saved again at once,
without the purged faces, and the snapshots of every other version are removed,
since they may still hold the faces' vectors from when that version was active.
Nothing needs them: a reindex to a version removes its file first, and a
process switching to it rebuilds it from the embedding rows.
"""

import logging

from sqlalchemy import select

from app.audit.actor import Actor
from app.db.engine import session_scope
from app.db.tables import ModelVersion, Subject
from app.db.types import utc_now
from app.gallery.context import GalleryContext
from app.gallery.errors import SubjectNotFound
from app.gallery.model_versions import snapshot
from app.gallery.subjects import delete_subject

log = logging.getLogger(__name__)


def purge_expired(context: GalleryContext, *, by: Actor) -> list[int]:
    """Delete every subject whose `retain_until` is past; the ids deleted, in order.

    Safe beside other processes doing the same or changing the subjects: each
    deletion takes the gallery's lock and looks again, so a subject deleted
    meanwhile is skipped and one whose retention was extended meanwhile is kept.
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
    if purged:
        _scrub_snapshots(context)
        log.info("purged %d expired subjects: %s", len(purged), purged)
    return purged


def _scrub_snapshots(context: GalleryContext) -> None:
    """Leave no stored index holding a purged face: save the one in use, remove the rest.

    A snapshot another process saved as of a later change than this one's is kept
    as it is: it was made after the deletions, so it holds none of their faces.
    """
    kept = context.follower.current().version.key  # the deletions applied, then saved
    context.follower.save()
    with session_scope(context.sessions) as session:
        keys = [snapshot(row).key for row in session.scalars(select(ModelVersion))]
    for key in keys:
        if key != kept:
            context.index_store.delete(key)
    # What an interrupted save left may hold the faces too.
    context.index_store.remove_temporary()
