"""`Gallery`: the one object every front door (API, CLI, pages, jobs) talks to."""

import logging
from pathlib import Path

import torch
from sqlalchemy import func, select

from app.audit.actor import Actor, Case
from app.db.engine import session_scope
from app.db.tables import Face, GalleryHead, Photo, Subject
from app.gallery import (
    enroll,
    faces,
    probe,
    reindex,
    retention,
    subjects,
    sweep,
    training_faces,
    verify,
)
from app.gallery.context import GalleryContext
from app.gallery.enroll import FacePolicy, Upload
from app.gallery.model_versions import ModelVersionInfo
from app.gallery.probe import version_view
from app.gallery.reindex import Cancelled, Progress, ReindexResult
from app.gallery.sweep import SweepReport
from app.gallery.training_faces import EnrolledFace
from app.schemas import (
    EnrollmentResult,
    FaceOut,
    ProbeResult,
    Stats,
    SubjectCreate,
    SubjectOut,
    SubjectPage,
    SubjectUpdate,
    VerifyResult,
)
from app.vision.detection import FaceDetector

log = logging.getLogger(__name__)


class Gallery:
    """Subjects, their enrolled faces, and searches over them, for one model version at a time."""

    def __init__(self, context: GalleryContext) -> None:
        self._context = context  # private: every front door goes through the methods

    # Subjects
    # Every change and every search names who did it (`by`), for the audit trail, and a
    # search names its case; each is recorded in the transaction that does it.
    def create_subject(self, request: SubjectCreate, *, by: Actor) -> SubjectOut:
        return subjects.create_subject(self._context, request, by=by)

    def get_subject(self, subject_id: int) -> SubjectOut:
        return subjects.get_subject(self._context, subject_id)

    def list_subjects(self, *, query: str | None, offset: int, limit: int) -> SubjectPage:
        return subjects.list_subjects(self._context, query=query, offset=offset, limit=limit)

    def update_subject(self, subject_id: int, changes: SubjectUpdate, *, by: Actor) -> SubjectOut:
        return subjects.update_subject(self._context, subject_id, changes, by=by)

    def delete_subject(self, subject_id: int, *, by: Actor) -> None:
        subjects.delete_subject(self._context, subject_id, by=by)

    def purge_expired(self, *, by: Actor) -> list[int]:
        """Delete every subject past its `retain_until`; the ids deleted."""
        return retention.purge_expired(self._context, by=by)

    # Faces
    def enroll(
        self, subject_id: int, uploads: list[Upload], *, by: Actor, policy: FacePolicy = "single"
    ) -> EnrollmentResult:
        outcomes = enroll.enroll_photos(self._context, subject_id, uploads, policy=policy, by=by)
        enrolled = sum(outcome.status == "enrolled" for outcome in outcomes)
        return EnrollmentResult(subject_id=subject_id, enrolled=enrolled, photos=outcomes)

    def list_faces(self, subject_id: int) -> list[FaceOut]:
        return faces.list_faces(self._context, subject_id)

    def first_face_ids(self, subject_ids: list[int]) -> dict[int, int]:
        return faces.first_face_ids(self._context, subject_ids)

    def chip_jpeg(self, face_id: int) -> bytes:
        return faces.chip_jpeg(self._context, face_id)

    def delete_face(self, face_id: int, *, by: Actor) -> None:
        faces.delete_face(self._context, face_id, by=by)

    # Searches
    def probe(
        self, data: bytes, *, k: int, by: Actor, case: Case, threshold: float | None = None
    ) -> ProbeResult:
        return probe.probe(self._context, data, k=k, threshold=threshold, by=by, case=case)

    def verify_photos(
        self,
        first: bytes,
        second: bytes,
        *,
        by: Actor,
        case: Case,
        threshold: float | None = None,
    ) -> VerifyResult:
        return verify.verify_photos(
            self._context, first, second, threshold=threshold, by=by, case=case
        )

    def verify_faces(
        self,
        first_id: int,
        second_id: int,
        *,
        by: Actor,
        case: Case,
        threshold: float | None = None,
    ) -> VerifyResult:
        return verify.verify_faces(
            self._context, first_id, second_id, threshold=threshold, by=by, case=case
        )

    # Model
    def reindex(
        self,
        backbone: str,
        *,
        device: torch.device,
        models_dir: Path,
        weights: Path | None = None,
        progress: Progress | None = None,
        cancelled: Cancelled | None = None,
    ) -> ReindexResult:
        """Re-embed every face with `backbone`, then switch to it (see `app.gallery.reindex`).

        Long: run it off the request path (the job worker does).
        """
        return reindex.reindex(
            self._context,
            backbone=backbone,
            device=device,
            models_dir=models_dir,
            weights=weights,
            progress=progress,
            cancelled=cancelled,
        )

    # Facts about the model in service
    def active_model(self) -> ModelVersionInfo:
        """The model version searches use now (after every change committed so far)."""
        return self._context.runtime().version

    def default_threshold(self) -> float:
        """The threshold a probe without one is answered with."""
        return self._context.default_threshold(self._context.runtime())

    @property
    def detector(self) -> FaceDetector:
        """The face detector every model version shares (training data preparation uses it)."""
        return self._context.runtime().embedder.detector

    # Training material
    def enrolled_faces(self) -> list[EnrolledFace]:
        """Every embedded face with the template its chip was cut for."""
        return training_faces.enrolled_faces(self._context)

    def subjects_with_chips(self, *, alignment: str, min_faces: int) -> int:
        """How many subjects have `min_faces` or more chips cut for `alignment`."""
        return training_faces.subjects_with_chips(
            self._context, alignment=alignment, min_faces=min_faces
        )

    @property
    def files_root(self) -> Path:
        """The folder the paths of `enrolled_faces` are relative to."""
        return self._context.files.root

    # Bulk enrollment
    def subject_id_for(self, external_id: str) -> int | None:
        """The subject with this external id (letters' case aside), if there is one."""
        return subjects.subject_id_for(self._context, external_id)

    def photo_hashes(self, subject_id: int) -> set[str]:
        """The SHA-256 of every photo enrolled for the subject."""
        return faces.photo_hashes(self._context, subject_id)

    # Housekeeping
    def sweep(self) -> SweepReport:
        """Remove what a killed process left (see `app.gallery.sweep`)."""
        return sweep.sweep(self._context)

    def stats(self) -> Stats:
        """Counts and index size as one snapshot: the counts, read in one statement with the
        change they are of, and the index as of that same change."""
        while True:  # until no other thread moves the index past the counts read
            seq, counts = self._counts()
            snapshot = self._context.follower.snapshot_at(seq)
            if snapshot is not None:
                runtime, index_size = snapshot
                return Stats(
                    **counts, model_version=version_view(runtime.version), index_size=index_size
                )

    def _counts(self) -> tuple[int, dict[str, int]]:
        with session_scope(self._context.sessions) as session:
            seq, *numbers = session.execute(
                select(
                    select(GalleryHead.seq).where(GalleryHead.id == 1).scalar_subquery(),
                    *(select(func.count()).select_from(t).scalar_subquery() for t in _COUNTED),
                )
            ).one()
        return seq, dict(zip(("subjects", "photos", "faces"), numbers, strict=True))

    def save_index(self) -> None:
        """Persist the index, unless a newer snapshot is stored, so a restart replays less."""
        self._context.follower.save()

    def close(self) -> None:
        self.save_index()


_COUNTED = (Subject, Photo, Face)
