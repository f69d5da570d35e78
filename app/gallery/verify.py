"""Verification: are two faces the same person? From two photos or two enrolled faces."""

import numpy as np
from numpy.typing import NDArray
from sqlalchemy import select
from sqlalchemy.orm import Session

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
    context: GalleryContext, first: bytes, second: bytes, *, threshold: float | None
) -> VerifyResult:
    """Compare the largest face of each photo."""
    runtime = context.runtime()
    vectors = [
        _largest_face_embedding(context, runtime, data, which)
        for which, data in (("first", first), ("second", second))
    ]
    return _result(context, runtime, vectors[0], vectors[1], threshold=threshold)


def verify_faces(
    context: GalleryContext, first_id: int, second_id: int, *, threshold: float | None
) -> VerifyResult:
    """Compare two enrolled faces by their stored embeddings under the active version."""
    runtime = context.runtime()
    with session_scope(context.sessions) as session:
        vectors = [
            _stored_embedding(session, runtime, face_id) for face_id in (first_id, second_id)
        ]
    return _result(context, runtime, vectors[0], vectors[1], threshold=threshold)


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


def _stored_embedding(session: Session, runtime: ModelRuntime, face_id: int) -> NDArray[np.float32]:
    if session.get(Face, face_id) is None:
        raise FaceNotFound(face_id)
    vector = session.scalar(
        select(Embedding.vector).where(
            Embedding.face_id == face_id, Embedding.model_version_id == runtime.version.id
        )
    )
    if vector is None:
        raise FaceNotEmbedded(face_id)
    stored: NDArray[np.float32] = vector_from_bytes(vector, runtime.version.embedding_dim)
    return stored


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
