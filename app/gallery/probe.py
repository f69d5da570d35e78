"""Probing: every face of a photo against the gallery, with ranked candidates or "no match".

The answer is open-set: a candidate is a match only at or above the threshold,
and a face whose best candidate is below it is reported as `no_match` rather
than forced onto the nearest subject. A face too small to search with is
reported as `too_small`, and never searched.
"""

import hashlib
from collections.abc import Iterable
from typing import Any, Literal

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.audit.actor import Actor, Case
from app.audit.trail import record
from app.db.engine import session_scope
from app.db.tables import Subject
from app.gallery.context import GalleryContext
from app.gallery.face_rules import too_small_reason
from app.gallery.gallery_index import SubjectHit
from app.gallery.model_versions import ModelVersionInfo
from app.schemas import (
    BoxOut,
    Candidate,
    ModelVersionOut,
    ProbeFace,
    ProbeResult,
    SubjectBrief,
)
from app.vision.detection import Detection
from app.vision.images import decode_image


def probe(
    context: GalleryContext,
    data: bytes,
    *,
    k: int,
    threshold: float | None,
    by: Actor,
    case: Case,
) -> ProbeResult:
    """Find every face in `data` and rank the `k` most similar subjects for each.

    A face smaller than the probe minimum (`LINEUP_MIN_FACE_SIZE`, by the rule
    of `face_rules`) is answered `too_small` with no candidates: it is never
    compared with the gallery, since its embedding says too little to rank
    anyone by. Faces keep the detector's order, most confident first.

    The answer is returned only once its audit record (the image's hash, every
    candidate and decision) is committed: no search goes unrecorded.
    """
    image = decode_image(data, max_pixels=context.policy.max_pixels)
    runtime = context.runtime()  # one version for the whole answer, even mid-reindex
    threshold = context.default_threshold(runtime) if threshold is None else threshold
    detections = runtime.embedder.detect(image)
    minimum = context.policy.min_probe_face_size
    reasons = [too_small_reason(detection, min_side=minimum) for detection in detections]
    searched = [d for d, reason in zip(detections, reasons, strict=True) if reason is None]
    faces = runtime.embedder.embed_faces(image, searched)
    hits = [runtime.index.best_subjects(face.embedding, k=k) for face in faces]
    subjects = _subjects(context, (hit.subject_id for face_hits in hits for hit in face_hits))
    answers = iter(
        _searched_face(face.detection, face_hits, subjects, threshold=threshold)
        for face, face_hits in zip(faces, hits, strict=True)
    )
    result = ProbeResult(
        model_version=version_view(runtime.version),
        threshold=threshold,
        k=k,
        faces=[
            next(answers) if reason is None else _face(detection, "too_small", [], detail=reason)
            for detection, reason in zip(detections, reasons, strict=True)
        ],
    )
    with session_scope(context.sessions) as session:
        _record_probe(session, by, case, hashlib.sha256(data).hexdigest(), result)
    return result


def _record_probe(
    session: Session, by: Actor, case: Case, sha256: str, result: ProbeResult
) -> None:
    faces: list[dict[str, Any]] = [
        {
            "decision": face.decision,
            "candidates": [
                {"subject_id": c.subject.id, "face_id": c.face_id, "similarity": c.similarity}
                for c in face.candidates
            ],
        }
        for face in result.faces
    ]
    record(
        session,
        by,
        "probe",
        case=case,
        subject_ids=(c["subject_id"] for face in faces for c in face["candidates"]),
        details={
            "image_sha256": [sha256],
            "k": result.k,
            "threshold": result.threshold,
            "faces": faces,
        },
        model_version_id=result.model_version.id,
    )


def version_view(version: ModelVersionInfo) -> ModelVersionOut:
    return ModelVersionOut.model_validate(version, from_attributes=True)


def _subjects(context: GalleryContext, ids: Iterable[int]) -> dict[int, SubjectBrief]:
    wanted = set(ids)
    if not wanted:
        return {}
    with session_scope(context.sessions) as session:
        rows = session.scalars(select(Subject).where(Subject.id.in_(wanted)))
        return {row.id: SubjectBrief.model_validate(row) for row in rows}


def _searched_face(
    detection: Detection,
    hits: list[SubjectHit],
    subjects: dict[int, SubjectBrief],
    *,
    threshold: float,
) -> ProbeFace:
    # A subject deleted between the search and the lookup is simply left out.
    candidates = [
        Candidate(
            rank=rank,
            subject=subjects[hit.subject_id],
            similarity=round(hit.similarity, 6),
            face_id=hit.face_id,
            above_threshold=hit.similarity >= threshold,
        )
        for rank, hit in enumerate((h for h in hits if h.subject_id in subjects), start=1)
    ]
    matched = bool(candidates) and candidates[0].above_threshold
    return _face(detection, "match" if matched else "no_match", candidates)


def _face(
    detection: Detection,
    decision: Literal["match", "no_match", "too_small"],
    candidates: list[Candidate],
    *,
    detail: str | None = None,
) -> ProbeFace:
    box = detection.box
    return ProbeFace(
        box=BoxOut(x1=box.x1, y1=box.y1, x2=box.x2, y2=box.y2),
        landmarks=detection.landmarks.round(2).tolist(),
        detection_probability=detection.probability,
        decision=decision,
        detail=detail,
        candidates=candidates,
    )
