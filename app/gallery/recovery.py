"""Embedding the faces the active runtime's version has no embedding for.

Run whenever a gallery opens (see `app.gallery.startup`): after a switch made
by another process, faces enrolled meanwhile under the old version, or all of
them when the gallery recovers onto a new model because its active one can no
longer be loaded. Every face missing from the version is embedded
from its stored chip, or re-aligned from its photo when the chip was cut for
another template, the way a reindex does it.
"""

import logging

from sqlalchemy import select

from app.db.engine import session_scope
from app.db.tables import Face
from app.gallery.context import GalleryContext
from app.gallery.reindex import chip_for, face_sources, has_embedding, store_vectors

log = logging.getLogger(__name__)

BATCH_SIZE = 32


def embed_missing_faces(context: GalleryContext, *, batch_size: int = BATCH_SIZE) -> int:
    """Embed, store and index every face that lacks an embedding under the active runtime's
    version; return how many. Runs before the gallery is shared, so it takes no lock."""
    runtime = context.runtime
    version = runtime.version
    with session_scope(context.sessions) as session:
        missing = list(
            session.scalars(select(Face.id).where(~has_embedding(version)).order_by(Face.id))
        )
    for start in range(0, len(missing), batch_size):
        with session_scope(context.sessions) as session:
            sources = face_sources(session, missing[start : start + batch_size])
        chips = [chip_for(context, runtime.embedder, source)[0] for source in sources]
        vectors = runtime.embedder.embed_chips(chips)
        with session_scope(context.sessions) as session:
            store_vectors(
                session, version, {s.face_id: v for s, v in zip(sources, vectors, strict=True)}
            )
        for source, vector in zip(sources, vectors, strict=True):
            runtime.index.add(
                face_id=source.face_id, subject_id=source.subject_id, embedding=vector
            )
        log.info("embedded %d of %d missing faces", start + len(sources), len(missing))
    if runtime.index.unsaved_changes:
        context.index_store.save(runtime.index.index, model_version=version.key)
        runtime.index.unsaved_changes = False
    return len(missing)
