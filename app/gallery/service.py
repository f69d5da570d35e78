"""`Gallery`: the one object every front door (API, CLI, pages, jobs) talks to."""

import logging
from pathlib import Path

import torch
from sqlalchemy import Engine, func, select

from app.db.engine import session_scope
from app.db.tables import Face, Photo, Subject
from app.gallery import enroll, faces, probe, reindex, subjects, verify
from app.gallery.context import GalleryContext
from app.gallery.enroll import FacePolicy, Upload
from app.gallery.probe import version_view
from app.gallery.reindex import Cancelled, Progress, ReindexResult
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

log = logging.getLogger(__name__)


class Gallery:
    """Subjects, their enrolled faces, and searches over them, for one model version at a time."""

    def __init__(self, context: GalleryContext, engine: Engine) -> None:
        self.context = context
        self._engine = engine

    # Subjects
    def create_subject(self, request: SubjectCreate) -> SubjectOut:
        return subjects.create_subject(self.context, request)

    def get_subject(self, subject_id: int) -> SubjectOut:
        return subjects.get_subject(self.context, subject_id)

    def list_subjects(self, *, query: str | None, offset: int, limit: int) -> SubjectPage:
        return subjects.list_subjects(self.context, query=query, offset=offset, limit=limit)

    def update_subject(self, subject_id: int, changes: SubjectUpdate) -> SubjectOut:
        return subjects.update_subject(self.context, subject_id, changes)

    def delete_subject(self, subject_id: int) -> None:
        subjects.delete_subject(self.context, subject_id)

    # Faces
    def enroll(
        self, subject_id: int, uploads: list[Upload], *, policy: FacePolicy = "single"
    ) -> EnrollmentResult:
        outcomes = enroll.enroll_photos(self.context, subject_id, uploads, policy=policy)
        enrolled = sum(outcome.status == "enrolled" for outcome in outcomes)
        return EnrollmentResult(subject_id=subject_id, enrolled=enrolled, photos=outcomes)

    def list_faces(self, subject_id: int) -> list[FaceOut]:
        return faces.list_faces(self.context, subject_id)

    def first_face_ids(self, subject_ids: list[int]) -> dict[int, int]:
        return faces.first_face_ids(self.context, subject_ids)

    def chip_jpeg(self, face_id: int) -> bytes:
        return faces.chip_jpeg(self.context, face_id)

    def delete_face(self, face_id: int) -> None:
        faces.delete_face(self.context, face_id)

    # Searches
    def probe(self, data: bytes, *, k: int, threshold: float | None = None) -> ProbeResult:
        return probe.probe(self.context, data, k=k, threshold=threshold)

    def verify_photos(
        self, first: bytes, second: bytes, *, threshold: float | None = None
    ) -> VerifyResult:
        return verify.verify_photos(self.context, first, second, threshold=threshold)

    def verify_faces(
        self, first_id: int, second_id: int, *, threshold: float | None = None
    ) -> VerifyResult:
        return verify.verify_faces(self.context, first_id, second_id, threshold=threshold)

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
            self.context,
            backbone=backbone,
            device=device,
            models_dir=models_dir,
            weights=weights,
            progress=progress,
            cancelled=cancelled,
        )

    # Housekeeping
    def stats(self) -> Stats:
        runtime = self.context.runtime
        with session_scope(self.context.sessions) as session:
            counts = {
                name: session.scalar(select(func.count()).select_from(table)) or 0
                for name, table in (("subjects", Subject), ("photos", Photo), ("faces", Face))
            }
        return Stats(
            **counts, model_version=version_view(runtime.version), index_size=len(runtime.index)
        )

    def save_index(self) -> None:
        """Persist the active index, if it changed, so the next start need not rebuild it."""
        runtime = self.context.runtime
        with self.context.write_lock:
            if runtime.index.unsaved_changes:
                self.context.index_store.save(
                    runtime.index.index, model_version=runtime.version.key
                )
                runtime.index.unsaved_changes = False

    def close(self) -> None:
        self.save_index()
        self._engine.dispose()
