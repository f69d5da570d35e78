"""Folder-per-identity photo trees (celeba, lfw, a user's own) and the subject-face rule.

A photo in such a tree may show several people; it is labelled with one. The
face taken as the subject's is the most prominent one: among faces at least
half as large as the largest, the one nearest the centre of the photo.
"""

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from app.vision.detection import Detection

PHOTO_SUFFIXES = {".jpg", ".jpeg", ".png", ".webp", ".bmp", ".pgm", ".gif", ".tif", ".tiff"}


@dataclass(frozen=True)
class LabelledPhoto:
    identity: str
    path: Path


def identities(root: Path) -> list[str]:
    """The identity folders under `root`, sorted."""
    return sorted(entry.name for entry in root.iterdir() if entry.is_dir())


def photos_of(root: Path, identity: str) -> list[Path]:
    """An identity's photos, sorted by file name."""
    folder = root / identity
    return sorted(p for p in folder.iterdir() if p.suffix.lower() in PHOTO_SUFFIXES)


def labelled_photos(
    root: Path, chosen: list[str], *, per_identity: int | None = None
) -> Iterator[LabelledPhoto]:
    """The photos of the `chosen` identities; the first `per_identity` of each when given."""
    for identity in chosen:
        for path in photos_of(root, identity)[:per_identity]:
            yield LabelledPhoto(identity, path)


def read_split(path: Path, part: str) -> list[str]:
    """One part (`train`, `val`) of an identity-disjoint split file."""
    split: dict[str, list[str]] = json.loads(path.read_text())
    if part not in split:
        raise ValueError(f"{path} has no {part!r} part; it has {sorted(split)}")
    return sorted(split[part])


def chosen_identities(root: Path, split: Path | None, part: str) -> list[str]:
    """The identities of `root` to use: those of the split's `part` that have a folder,
    or every folder when there is no split."""
    present = identities(root)
    if split is None:
        return present
    found = set(present)
    return [name for name in read_split(split, part) if name in found]


def subject_face(detections: list[Detection], *, width: int, height: int) -> Detection | None:
    """The labelled person's face: prominent (≥ half the largest) and nearest the centre."""
    if not detections:
        return None
    largest = max(d.box.area for d in detections)
    prominent = [d for d in detections if d.box.area >= largest / 2]
    centre = np.array([width / 2, height / 2])
    return min(prominent, key=lambda d: float(np.linalg.norm(np.subtract(d.box.center, centre))))
