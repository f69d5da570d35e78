"""The chip cache: subject faces detected once, skipped photos counted, changed photos redone."""

import os
import shutil
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from app.training.chips import ChipCache, ChipSet
from app.training.face_tree import LabelledPhoto, identities, labelled_photos
from app.vision.detection import Detection, FaceDetector
from app.vision.embedder import FaceEmbedder


class CountingDetector:
    """The real detector, counting how often it is asked to look."""

    def __init__(self, detector: FaceDetector) -> None:
        self.detector = detector
        self.calls = 0

    def detect(self, image: Image.Image) -> list[Detection]:
        self.calls += 1
        return self.detector.detect(image)


@pytest.fixture(scope="module")
def tree(faces_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Ada: two portraits and a corrupt file. Bob: a blank picture and a photo of a couple."""
    root = tmp_path_factory.mktemp("tree")
    (root / "Ada").mkdir()
    (root / "Bob").mkdir()
    for number in (1, 2):
        name = f"Abdullah_Gul_000{number}.jpg"
        shutil.copy(faces_dir / "lfw_mini" / "Abdullah_Gul" / name, root / "Ada" / name)
    (root / "Ada" / "broken.jpg").write_bytes(b"not a jpeg at all")
    Image.new("RGB", (200, 200), (128, 128, 128)).save(root / "Bob" / "blank.png")
    # Downscaled: detection time grows with the pixels, and two faces remain plain to see.
    with Image.open(faces_dir / "multi_face" / "couple.jpg") as couple:
        couple.reduce(3).save(root / "Bob" / "couple.jpg")
    return root


@dataclass
class Built:
    chips: ChipSet
    cache_dir: Path
    detections: int
    progress: list[tuple[int, int]]


def build(tree: Path, cache_dir: Path, embedder: FaceEmbedder) -> Built:
    detector = CountingDetector(embedder.detector)
    cache = ChipCache(root=tree, cache_dir=cache_dir, detector=detector)
    progress: list[tuple[int, int]] = []
    chips = cache.build(
        labelled_photos(tree, identities(tree)), progress=lambda d, t: progress.append((d, t))
    )
    return Built(chips, cache_dir, detector.calls, progress)


@pytest.fixture(scope="module")
def first(tree: Path, embedder: FaceEmbedder, tmp_path_factory: pytest.TempPathFactory) -> Built:
    """The tree's first build, into an empty cache."""
    return build(tree, tmp_path_factory.mktemp("cache"), embedder)


def test_unusable_photos_are_counted_by_reason(first: Built) -> None:
    assert first.progress == [(n, 5) for n in range(1, 6)]
    assert first.detections == 4  # the corrupt file is refused before detection
    assert [r.photo for r in first.chips.records] == [
        "Ada/Abdullah_Gul_0001.jpg",
        "Ada/Abdullah_Gul_0002.jpg",
        "Bob/couple.jpg",
    ]
    assert first.chips.skipped == Counter({"unreadable_image": 1, "no_face": 1})
    assert first.chips.identities() == ["Ada", "Bob"]
    assert first.chips.labels().tolist() == [0, 0, 1]


def test_a_second_build_reuses_every_chip(tree: Path, first: Built, embedder: FaceEmbedder) -> None:
    again = build(tree, first.cache_dir, embedder)
    assert again.detections == 0
    assert again.chips.records == first.chips.records
    assert again.chips.skipped == first.chips.skipped
    assert all(
        np.array_equal(first.chips.chip(i), again.chips.chip(i)) for i in range(len(first.chips))
    )


def test_a_record_keeps_what_degrading_the_photo_later_needs(tree: Path, first: Built) -> None:
    chips = first.chips
    record = chips.records[0]
    assert chips.photo_path(0) == tree / "Ada" / "Abdullah_Gul_0001.jpg"
    chip = chips.chip(0)
    assert chip.shape == (150, 150, 3) and chip.dtype == np.uint8
    assert len(record.landmarks) == 5
    # LFW's deep-funneled faces are about 100 px wide; aligned, about 120 px of the chip.
    assert 60 < record.box_width < 160
    assert 90 < record.chip_face_width < 150
    assert chips.records[2].faces_in_photo >= 2


def test_a_changed_photo_is_detected_again(
    tree: Path, first: Built, tmp_path: Path, embedder: FaceEmbedder
) -> None:
    # Copies keep their mtimes, so the copied cache is current for the copied tree.
    shutil.copytree(tree, tmp_path / "tree")
    shutil.copytree(first.cache_dir, tmp_path / "cache")
    photo = tmp_path / "tree" / "Ada" / "Abdullah_Gul_0002.jpg"
    stat = photo.stat()
    os.utime(photo, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))
    again = build(tmp_path / "tree", tmp_path / "cache", embedder)
    assert again.detections == 1
    old_chip = first.chips.records[1].chip_file
    assert again.chips.records[1].chip_file != old_chip
    assert not (tmp_path / "cache" / old_chip).exists()
    assert again.chips.records[0] == first.chips.records[0]


def test_photos_outside_the_root_are_refused(
    tree: Path, tmp_path: Path, embedder: FaceEmbedder
) -> None:
    cache = ChipCache(root=tree / "Ada", cache_dir=tmp_path, detector=embedder.detector)
    with pytest.raises(ValueError):
        cache.build([LabelledPhoto("Bob", tree / "Bob" / "couple.jpg")])
