"""What every gallery operation needs: the database, the files, the model and its index."""

import threading
from dataclasses import dataclass, field

from sqlalchemy.orm import Session, sessionmaker

from app.gallery.files import FileStore
from app.gallery.gallery_index import GalleryIndex
from app.gallery.model_versions import ModelVersionInfo
from app.index import IndexStore
from app.vision.embedder import FaceEmbedder


@dataclass(frozen=True)
class ModelRuntime:
    """One model version's embedder and index, swapped as a unit.

    A probe takes the current runtime once and uses it to the end, so its
    embeddings and the vectors it is compared with always share a version.
    """

    embedder: FaceEmbedder
    version: ModelVersionInfo
    index: GalleryIndex


@dataclass(frozen=True)
class EnrollmentPolicy:
    """When a photo is good enough to enroll, and how much input is accepted at all."""

    min_face_size: int
    min_probability: float
    max_upload_bytes: int
    max_pixels: int


@dataclass
class GalleryContext:
    """Shared state of one running gallery; `write_lock` serialises every change."""

    sessions: sessionmaker[Session]
    files: FileStore
    index_store: IndexStore
    policy: EnrollmentPolicy
    runtime: ModelRuntime
    threshold_override: float | None = None
    write_lock: threading.Lock = field(default_factory=threading.Lock)

    def default_threshold(self, runtime: ModelRuntime) -> float:
        """The match threshold for answers from `runtime`: the operator's override, else
        the value calibrated for that model version (taken from the runtime an answer
        already uses, so a reindex switching mid-probe cannot pair two versions)."""
        if self.threshold_override is not None:
            return self.threshold_override
        if runtime.version.threshold is None:
            raise RuntimeError("no match threshold: calibrate the model or set one")
        return runtime.version.threshold
