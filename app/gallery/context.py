"""What every gallery operation needs: the database, the files, the policy and the model."""

from dataclasses import dataclass

from sqlalchemy.orm import Session, sessionmaker

from app.gallery.files import FileStore
from app.gallery.follower import IndexFollower
from app.gallery.runtime import ModelRuntime
from app.index import IndexStore


@dataclass(frozen=True)
class EnrollmentPolicy:
    """When a face is good enough to enroll or to search with, and how much input is
    accepted at all."""

    min_face_size: int
    min_probability: float
    max_upload_bytes: int
    max_pixels: int
    min_probe_face_size: int


@dataclass
class GalleryContext:
    """Shared state of one process's gallery; private to `app.gallery`.

    Changes are serialised by the database (`app.gallery.changes.gallery_write`),
    across every process; `follower` keeps this process's runtime up to date.
    """

    sessions: sessionmaker[Session]
    files: FileStore
    index_store: IndexStore
    policy: EnrollmentPolicy
    follower: IndexFollower
    threshold_override: float | None = None

    def runtime(self) -> ModelRuntime:
        """The current runtime, after every change committed so far has been applied."""
        return self.follower.current()

    def default_threshold(self, runtime: ModelRuntime) -> float:
        """The match threshold for answers from `runtime`: the operator's override, else
        the value calibrated for that model version (taken from the runtime an answer
        already uses, so a reindex switching mid-probe cannot pair two versions)."""
        if self.threshold_override is not None:
            return self.threshold_override
        if runtime.version.threshold is None:
            raise RuntimeError("no match threshold: calibrate the model or set one")
        return runtime.version.threshold
