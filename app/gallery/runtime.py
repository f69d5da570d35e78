"""`ModelRuntime`: one model version's embedder and index, taken as a unit."""

from dataclasses import dataclass

from app.gallery.gallery_index import GalleryIndex
from app.gallery.model_versions import ModelVersionInfo
from app.vision.embedder import FaceEmbedder


@dataclass(frozen=True)
class ModelRuntime:
    """One model version's embedder and index, swapped as a unit.

    An operation takes the current runtime once and passes it on to the end,
    so its embeddings, the vectors they are compared with and the version it
    records always agree, even when a reindex switches meanwhile.
    """

    embedder: FaceEmbedder
    version: ModelVersionInfo
    index: GalleryIndex
