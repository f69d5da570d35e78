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
from pathlib import Path

import numpy as np

from app.gallery.errors import OperationCancelled
from app.gallery.service import Gallery
from app.gallery.training_faces import EnrolledFace
from app.jobs.schemas import FolderDataset, GalleryDataset
from app.jobs.training_sets import split_identities
from app.training.chips import ChipCache, ChipRecord, ChipSet, tree_cache_dir
from app.training.face_tree import identities, labelled_photos
from app.vision.alignment import estimate_similarity
from app.vision.alignment_template import DLIB_150

Cancelled = Callable[[], bool]
Report = Callable[[str], None]


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
    gallery: Gallery,
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
        detector=gallery.detector,
    )

    def progress(done: int, total: int) -> None:
        if cancelled():
            raise OperationCancelled("the retrain was cancelled")
        report(f"prepared {done} of {total} photos")

    photos = labelled_photos(dataset.path, folder_identities(dataset))
    return cache.build(photos, progress=progress)


def gallery_identities(gallery: Gallery, dataset: GalleryDataset) -> int:
    """How many subjects have at least `min_photos` faces with dlib-aligned chips."""
    return gallery.subjects_with_chips(alignment=DLIB_150.name, min_faces=dataset.min_photos)


def gallery_chips(
    gallery: Gallery, dataset: GalleryDataset, *, snapshot_dir: Path, cancelled: Cancelled
) -> ChipSet:
    """A snapshot of the chips of subjects with at least `min_photos` usable faces."""
    (snapshot_dir / "chips").mkdir(parents=True, exist_ok=True)
    every = gallery.enrolled_faces()
    root = gallery.files_root
    rows = [face for face in every if face.alignment == DLIB_150.name]
    per_photo = Counter(row.photo_id for row in rows)
    by_subject: defaultdict[int, list[ChipRecord]] = defaultdict(list)
    skipped = Counter[str]()
    for row in rows:
        if cancelled():
            raise OperationCancelled("the retrain was cancelled")
        chip_file = f"chips/{row.face_id}.png"
        try:
            shutil.copyfile(root / row.chip_path, snapshot_dir / chip_file)
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
    return ChipSet(root, snapshot_dir, records, +skipped)


def _record(face: EnrolledFace, chip_file: str, faces_in_photo: int) -> ChipRecord:
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
