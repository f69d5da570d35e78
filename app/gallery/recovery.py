"""Embedding the faces the active runtime's version has no embedding for.

Run whenever a gallery opens (see `app.gallery.startup`): after a switch made
by another process, faces enrolled meanwhile under the old version, or all of
them when the gallery recovers onto a new model because its active one can no
longer be loaded. Every face missing from the version is embedded
from its stored chip, or re-aligned from its photo when the chip was cut for
another template, the way a reindex does it.
"""

from app.gallery.context import GalleryContext
from app.gallery.reindex import embed_missing


def embed_missing_faces(context: GalleryContext) -> int:
    """Embed, store and index every face that lacks an embedding under the runtime's
    version; return how many. Runs before the gallery is shared: nothing else in this
    process touches the index meanwhile."""
    runtime = context.follower.current()
    return embed_missing(context, runtime.embedder, runtime.version, runtime.index)
