"""Aligned face chips of a labelled photo tree, detected once and cached on disk.

Detection dominates the cost of reading a tree, and training reads it every
epoch, so each photo's subject face (`face_tree.subject_face`) is detected and
aligned once and its chip stored as a lossless PNG under `cache_dir/chips/`.
`cache_dir/index.json` maps (template, photo path relative to the tree's root)
to the photo's size and mtime and to its chip, or to why it was skipped, so a
re-run only looks at photos that are new or changed. Use one cache directory
per tree. Each chip keeps its photo's path, landmarks and face width, so CCTV
probes can be degraded from the original photo later.

Chips are cut for `DLIB_150` unless told otherwise, whatever model the gallery
serves: fine-tuning trains dlib's network, and evaluation measures it and the
models made from it, so only a detector is needed here, never a backbone.
"""

import hashlib
import json
import logging
import os
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray
from PIL import Image

from app.training.face_tree import LabelledPhoto, subject_face
from app.vision.alignment import align_face, estimate_similarity
from app.vision.alignment_template import DLIB_150, AlignmentTemplate
from app.vision.detection import FaceDetector
from app.vision.errors import ImageRejected
from app.vision.images import decode_image

log = logging.getLogger(__name__)

Progress = Callable[[int, int], None]
INDEX_FILE = "index.json"
_SAVE_EVERY = 200


@dataclass(frozen=True)
class ChipRecord:
    """One photo's subject face: where the photo is, where its chip is, how big the face was."""

    identity: str
    photo: str
    chip_file: str
    box_width: float
    chip_face_width: float
    landmarks: tuple[tuple[float, float], ...]
    faces_in_photo: int


@dataclass
class ChipSet:
    """The usable chips of a tree, in the order the photos were given, and the skip counts."""

    root: Path
    cache_dir: Path
    records: list[ChipRecord]
    skipped: Counter[str] = field(default_factory=Counter)

    def __len__(self) -> int:
        return len(self.records)

    def photo_path(self, index: int) -> Path:
        """The original photo of chip `index`."""
        return self.root / self.records[index].photo

    def chip(self, index: int) -> NDArray[np.uint8]:
        """Chip `index` as a writable S×S×3 RGB uint8 array."""
        with Image.open(self.cache_dir / self.records[index].chip_file) as image:
            return np.array(image.convert("RGB"), dtype=np.uint8)

    def identities(self) -> list[str]:
        """The identities with at least one chip, sorted."""
        return sorted({record.identity for record in self.records})

    def stack(self, indices: Iterable[int] | None = None) -> NDArray[np.uint8]:
        """Chips `indices` (default: all) as one N×S×S×3 array."""
        chosen = range(len(self)) if indices is None else indices
        return np.stack([self.chip(int(index)) for index in chosen])

    def subset(self, identities: list[str]) -> "ChipSet":
        """The chips of `identities` only (the skip counts stay the whole set's)."""
        chosen = set(identities)
        records = [record for record in self.records if record.identity in chosen]
        return ChipSet(self.root, self.cache_dir, records, Counter(self.skipped))

    def labels(self) -> NDArray[np.int64]:
        """Each chip's identity as its index in `identities()`."""
        numbers = {name: number for number, name in enumerate(self.identities())}
        return np.array([numbers[r.identity] for r in self.records], dtype=np.int64)


def tree_cache_dir(cache_root: Path, root: Path) -> Path:
    """The cache folder of the tree at `root`: one per tree, named by its resolved path."""
    key = hashlib.sha256(str(root.resolve()).encode()).hexdigest()[:16]
    return cache_root / key


class ChipCache:
    """Builds `ChipSet`s for photos under `root`, reusing chips already in `cache_dir`."""

    def __init__(
        self,
        *,
        root: Path,
        cache_dir: Path,
        detector: FaceDetector,
        template: AlignmentTemplate = DLIB_150,
    ) -> None:
        self.root = root
        self.cache_dir = cache_dir
        self.detector = detector
        self.template = template
        self._index: dict[str, dict[str, Any]] = _read_index(cache_dir / INDEX_FILE)

    def build(
        self, photos: Iterable[LabelledPhoto], *, progress: Progress | None = None
    ) -> ChipSet:
        """The chips of `photos` (which lie under `root`); unusable photos are counted."""
        photos = list(photos)
        (self.cache_dir / "chips").mkdir(parents=True, exist_ok=True)
        records, skipped, detected = [], Counter[str](), 0
        for done, photo in enumerate(photos, start=1):
            entry, fresh = self._entry(photo)
            detected += fresh
            if "skipped" in entry:
                skipped[entry["skipped"]] += 1
            else:
                records.append(_record_from_json(entry["chip"]))
            if fresh and detected % _SAVE_EVERY == 0:
                self._save_index()
            if progress is not None:
                progress(done, len(photos))
        self._save_index()
        _log_summary(len(photos), detected=detected, skipped=skipped)
        return ChipSet(self.root, self.cache_dir, records, skipped)

    def _entry(self, photo: LabelledPhoto) -> tuple[dict[str, Any], bool]:
        """The index entry of `photo`, computed now (True) unless a current one is cached."""
        relative = photo.path.relative_to(self.root).as_posix()
        key = f"{self.template.name}|{relative}"
        try:
            stat = photo.path.stat()
        except OSError:
            return {"skipped": "unreadable_file"}, False
        stamp = [stat.st_size, stat.st_mtime_ns]
        cached = self._index.get(key)
        if cached is not None and cached["stamp"] == stamp:
            return cached, False
        if cached is not None and "chip" in cached:
            (self.cache_dir / cached["chip"]["chip_file"]).unlink(missing_ok=True)
        entry = self._detect(photo, relative=relative, stamp=stamp)
        self._index[key] = entry
        return entry, True

    def _detect(self, photo: LabelledPhoto, *, relative: str, stamp: list[int]) -> dict[str, Any]:
        try:
            image = decode_image(photo.path.read_bytes())
        except ImageRejected as error:
            return {"stamp": stamp, "skipped": error.code}
        except OSError:
            return {"stamp": stamp, "skipped": "unreadable_file"}
        detections = self.detector.detect(image)
        face = subject_face(detections, width=image.width, height=image.height)
        if face is None:
            return {"stamp": stamp, "skipped": "no_face"}
        chip = align_face(image, face.landmarks, self.template)
        name = hashlib.sha256(f"{self.template.name}|{relative}|{stamp}".encode()).hexdigest()
        chip_file = f"chips/{name[:24]}.png"
        Image.fromarray(chip).save(self.cache_dir / chip_file)
        to_chip = estimate_similarity(face.landmarks, self.template.as_array())
        record = ChipRecord(
            identity=photo.identity,
            photo=relative,
            chip_file=chip_file,
            box_width=face.box.width,
            chip_face_width=face.box.width * to_chip.scale,
            landmarks=tuple((float(x), float(y)) for x, y in face.landmarks),
            faces_in_photo=len(detections),
        )
        return {"stamp": stamp, "chip": asdict(record)}

    def _save_index(self) -> None:
        """Write the index atomically, so an interrupted run leaves a readable one."""
        path = self.cache_dir / INDEX_FILE
        partial = path.with_suffix(".json.partial")
        partial.write_text(json.dumps({"version": 1, "entries": self._index}))
        os.replace(partial, path)


def _read_index(path: Path) -> dict[str, dict[str, Any]]:
    if not path.is_file():
        return {}
    entries: dict[str, dict[str, Any]] = json.loads(path.read_text())["entries"]
    return entries


def _record_from_json(fields: dict[str, Any]) -> ChipRecord:
    landmarks = tuple((float(x), float(y)) for x, y in fields["landmarks"])
    return ChipRecord(**{**fields, "landmarks": landmarks})


def _log_summary(total: int, *, detected: int, skipped: Counter[str]) -> None:
    log.info("chips: %d photos, %d detected now, %d from cache", total, detected, total - detected)
    if skipped:
        log.info("skipped %d of %d photos: %s", sum(skipped.values()), total, dict(skipped))
