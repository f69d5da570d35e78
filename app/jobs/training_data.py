"""The chips a retrain learns from: a server-side photo tree, or the gallery's own faces.

A tree goes through the chip cache (`app.training.chips.ChipCache`, one cache
folder per tree under the data dir), so a second retrain on it detects
nothing again. The gallery's faces already have aligned chips on disk; those
cut for dlib's template (`DLIB_150`, which fine-tuning trains on) are copied
into a snapshot folder for the run, so that faces deleted meanwhile neither
break the run nor outlive it: the caller deletes the snapshot afterwards.
Faces whose chips were cut for another template (enrolled while a facenet
model was active) are counted as skipped.
"""

import shutil
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVarTuple

import numpy as np
from sqlalchemy import Select, func, select

from app.db.engine import session_scope
from app.db.tables import Embedding, Face, ModelVersion, Photo
from app.gallery.context import GalleryContext
from app.gallery.errors import OperationCancelled
from app.jobs.schemas import FolderDataset, GalleryDataset
from app.jobs.training_sets import split_identities
from app.training.chips import ChipCache, ChipRecord, ChipSet, tree_cache_dir
from app.training.face_tree import identities, labelled_photos
from app.vision.alignment import estimate_similarity
from app.vision.alignment_template import DLIB_150

Cancelled = Callable[[], bool]
Report = Callable[[str], None]


@dataclass(frozen=True)
class _GalleryFace:
    """An enrolled face, with the template its chip was cut for (its first embedding's)."""

    face_id: int
    subject_id: int
    photo_id: int
    photo_path: str
    chip_path: str
    box_width: float
    landmarks: list[list[float]]
    alignment: str


def folder_identities(dataset: FolderDataset) -> list[str]:
    """The identities a folder dataset trains on: those of the split's part that have a
    folder, or every sub-folder. The split is read by `split_identities`, whose refusals
    never quote the file."""
    present = identities(dataset.path)
    if dataset.split is None:
        return present
    found = set(present)
    return [name for name in split_identities(dataset.split, dataset.part) if name in found]


def folder_chips(
    context: GalleryContext,
    dataset: FolderDataset,
    *,
    cache_root: Path,
    report: Report,
    cancelled: Cancelled,
) -> ChipSet:
    """The tree's chips, from the cache where they are already there, detected otherwise."""
    cache = ChipCache(
        root=dataset.path,
        cache_dir=tree_cache_dir(cache_root, dataset.path),
        detector=context.runtime().embedder.detector,
    )

    def progress(done: int, total: int) -> None:
        if cancelled():
            raise OperationCancelled("the retrain was cancelled")
        report(f"prepared {done} of {total} photos")

    photos = labelled_photos(dataset.path, folder_identities(dataset))
    return cache.build(photos, progress=progress)


def gallery_identities(context: GalleryContext, dataset: GalleryDataset) -> int:
    """How many subjects have at least `min_photos` faces with dlib-aligned chips."""
    subjects = (
        _with_chip_alignment(select(Face.subject_id))
        .where(ModelVersion.alignment == DLIB_150.name)
        .group_by(Face.subject_id)
        .having(func.count(Face.id) >= dataset.min_photos)
        .subquery()
    )
    with session_scope(context.sessions) as session:
        return session.scalar(select(func.count()).select_from(subjects)) or 0


def gallery_chips(
    context: GalleryContext, dataset: GalleryDataset, *, snapshot_dir: Path, cancelled: Cancelled
) -> ChipSet:
    """A snapshot of the chips of subjects with at least `min_photos` usable faces."""
    (snapshot_dir / "chips").mkdir(parents=True, exist_ok=True)
    every = _gallery_faces(context)
    rows = [face for face in every if face.alignment == DLIB_150.name]
    per_photo = Counter(row.photo_id for row in rows)
    by_subject: defaultdict[int, list[ChipRecord]] = defaultdict(list)
    skipped = Counter[str]()
    for row in rows:
        if cancelled():
            raise OperationCancelled("the retrain was cancelled")
        chip_file = f"chips/{row.face_id}.png"
        try:
            shutil.copyfile(context.files.root / row.chip_path, snapshot_dir / chip_file)
        except FileNotFoundError:
            skipped["deleted_meanwhile"] += 1
            continue
        by_subject[row.subject_id].append(_record(row, chip_file, per_photo[row.photo_id]))
    records: list[ChipRecord] = []
    for found in by_subject.values():
        if len(found) >= dataset.min_photos:
            records.extend(found)
        else:
            skipped["subject_with_too_few_faces"] += len(found)
    skipped["chip_for_another_template"] += len(every) - len(rows)
    return ChipSet(context.files.root, snapshot_dir, records, +skipped)


Columns = TypeVarTuple("Columns")


def _with_chip_alignment(query: Select[*Columns]) -> Select[*Columns]:
    """`query` over faces, joined to the model version whose template their chips were
    cut for: the version active at enrollment, which wrote the face's first embedding.
    Faces without an embedding drop out."""
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


def _gallery_faces(context: GalleryContext) -> list[_GalleryFace]:
    """Every face that has an embedding, subject by subject, with its chip's alignment."""
    query = _with_chip_alignment(
        select(Face, Photo.stored_path, ModelVersion.alignment).join(
            Photo, Photo.id == Face.photo_id
        )
    ).order_by(Face.subject_id, Face.id)
    with session_scope(context.sessions) as session:
        return [
            _GalleryFace(
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


def _record(face: _GalleryFace, chip_file: str, faces_in_photo: int) -> ChipRecord:
    """What `ChipSet` keeps of a chip; the face's width in the chip is what augmentation
    (simulated low resolution) needs."""
    landmarks = np.asarray(face.landmarks, dtype=np.float64)
    to_chip = estimate_similarity(landmarks, DLIB_150.as_array())
    return ChipRecord(
        identity=f"subject-{face.subject_id}",
        photo=face.photo_path,
        chip_file=chip_file,
        box_width=face.box_width,
        chip_face_width=face.box_width * to_chip.scale,
        landmarks=tuple((float(x), float(y)) for x, y in face.landmarks),
        faces_in_photo=faces_in_photo,
    )
