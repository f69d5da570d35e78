"""Verification: are two faces the same person? From two photos or two enrolled faces."""

import hashlib
from collections.abc import Mapping

import numpy as np
from numpy.typing import NDArray
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.audit.actor import Actor, Case
from app.audit.trail import record
from app.db.engine import session_scope
from app.db.tables import Embedding, Face
from app.db.vectors import vector_from_bytes
from app.gallery.context import GalleryContext
from app.gallery.errors import FaceNotEmbedded, FaceNotFound, NoFaceFound
from app.gallery.probe import version_view
from app.gallery.runtime import ModelRuntime
from app.schemas import VerifyResult
from app.vision.images import decode_image


def verify_photos(
    context: GalleryContext,
    first: bytes,
    second: bytes,
    *,
    threshold: float | None,
    by: Actor,
    case: Case,
) -> VerifyResult:
    """Compare the largest face of each photo; answered once its audit record is committed."""
    runtime = context.runtime()
    vectors = [
        _largest_face_embedding(context, runtime, data, which)
        for which, data in (("first", first), ("second", second))
    ]
    result = _result(context, runtime, vectors[0], vectors[1], threshold=threshold)
    hashes = [hashlib.sha256(data).hexdigest() for data in (first, second)]
    with session_scope(context.sessions) as session:
        _record_verify(session, by, case, result, {"image_sha256": hashes}, subject_ids=[])
    return result


def verify_faces(
    context: GalleryContext,
    first_id: int,
    second_id: int,
    *,
    threshold: float | None,
    by: Actor,
    case: Case,
) -> VerifyResult:
    """Compare two enrolled faces by their stored embeddings under the active version."""
    runtime = context.runtime()
    with session_scope(context.sessions) as session:
        faces = [_stored_embedding(session, runtime, face_id) for face_id in (first_id, second_id)]
    result = _result(context, runtime, faces[0][0], faces[1][0], threshold=threshold)
    # A transaction of its own: one that read first could not wait for SQLite's write lock.
    with session_scope(context.sessions) as session:
        target = {"face_ids": [first_id, second_id]}
        _record_verify(session, by, case, result, target, subject_ids=[f[1] for f in faces])
    return result


def _record_verify(
    session: Session,
    by: Actor,
    case: Case,
    result: VerifyResult,
    target: Mapping[str, object],
    *,
    subject_ids: list[int],
) -> None:
    answer = {
        "similarity": result.similarity,
        "threshold": result.threshold,
        "same_person": result.same_person,
    }
    record(
        session,
        by,
        "verify",
        case=case,
        subject_ids=subject_ids,
        details={**target, **answer},
        model_version_id=result.model_version.id,
    )


def _largest_face_embedding(
    context: GalleryContext, runtime: ModelRuntime, data: bytes, which: str
) -> NDArray[np.float32]:
    image = decode_image(data, max_pixels=context.policy.max_pixels)
    detections = runtime.embedder.detect(image)
    if not detections:
        raise NoFaceFound(f"no face was found in the {which} photo")
    largest = max(detections, key=lambda detection: detection.box.area)
    chip = runtime.embedder.align(image, largest)
    embedding: NDArray[np.float32] = runtime.embedder.embed_chips([chip])[0]
    return embedding


def _stored_embedding(
    session: Session, runtime: ModelRuntime, face_id: int
) -> tuple[NDArray[np.float32], int]:
    """The face's embedding under the active version, and its subject's id."""
    face = session.get(Face, face_id)
    if face is None:
        raise FaceNotFound(face_id)
    vector = session.scalar(
        select(Embedding.vector).where(
            Embedding.face_id == face_id, Embedding.model_version_id == runtime.version.id
        )
    )
    if vector is None:
        raise FaceNotEmbedded(face_id)
    stored: NDArray[np.float32] = vector_from_bytes(vector, runtime.version.embedding_dim)
    return stored, face.subject_id


def _result(
    context: GalleryContext,
    runtime: ModelRuntime,
    first: NDArray[np.float32],
    second: NDArray[np.float32],
    *,
    threshold: float | None,
) -> VerifyResult:
    threshold = context.default_threshold(runtime) if threshold is None else threshold
    similarity = float(np.dot(first, second))
    return VerifyResult(
        model_version=version_view(runtime.version),
        similarity=round(similarity, 6),
        threshold=threshold,
        same_person=similarity >= threshold,
    )
