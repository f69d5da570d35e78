"""The gallery's enrolled faces as training material: which template each chip was cut for.

A chip is cut for the template of the model version active when its face was
enrolled, which wrote the face's first embedding. Fine-tuning (`app.jobs`)
reads these rows to decide which chips it can learn from; it never opens the
gallery's database itself.
"""

from dataclasses import dataclass
from typing import TypeVarTuple

from sqlalchemy import Select, func, select

from app.db.engine import session_scope
from app.db.tables import Embedding, Face, ModelVersion, Photo
from app.gallery.context import GalleryContext


@dataclass(frozen=True)
class EnrolledFace:
    """An enrolled face, with the template its chip was cut for; paths are relative to
    the gallery's files root."""

    face_id: int
    subject_id: int
    photo_id: int
    photo_path: str
    chip_path: str
    box_width: float
    landmarks: list[list[float]]
    alignment: str


def enrolled_faces(context: GalleryContext) -> list[EnrolledFace]:
    """Every face that has an embedding, subject by subject, with its chip's alignment."""
    query = _with_chip_alignment(
        select(Face, Photo.stored_path, ModelVersion.alignment).join(
            Photo, Photo.id == Face.photo_id
        )
    ).order_by(Face.subject_id, Face.id)
    with session_scope(context.sessions) as session:
        return [
            EnrolledFace(
                face_id=face.id,
                subject_id=face.subject_id,
                photo_id=face.photo_id,
                photo_path=photo_path,
                chip_path=face.chip_path,
                box_width=face.x2 - face.x1,
                landmarks=face.landmarks,
                alignment=alignment,
            )
            for face, photo_path, alignment in session.execute(query)
        ]


def subjects_with_chips(context: GalleryContext, *, alignment: str, min_faces: int) -> int:
    """How many subjects have at least `min_faces` faces whose chips were cut for `alignment`."""
    subjects = (
        _with_chip_alignment(select(Face.subject_id))
        .where(ModelVersion.alignment == alignment)
        .group_by(Face.subject_id)
        .having(func.count(Face.id) >= min_faces)
        .subquery()
    )
    with session_scope(context.sessions) as session:
        return session.scalar(select(func.count()).select_from(subjects)) or 0


Columns = TypeVarTuple("Columns")


def _with_chip_alignment(query: Select[*Columns]) -> Select[*Columns]:
    """`query` over faces, joined to the model version that wrote each face's first
    embedding; faces without an embedding drop out."""
    first = (
        select(Embedding.face_id, func.min(Embedding.id).label("embedding_id"))
        .group_by(Embedding.face_id)
        .subquery()
    )
    return (
        query.join(first, first.c.face_id == Face.id)
        .join(Embedding, Embedding.id == first.c.embedding_id)
        .join(ModelVersion, ModelVersion.id == Embedding.model_version_id)
    )
