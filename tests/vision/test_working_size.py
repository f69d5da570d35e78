"""Detection on a working copy: large photos searched small, faces found and cut full size."""

from pathlib import Path

import numpy as np
import pytest
import torch
from numpy.typing import NDArray
from PIL import Image

from app.vision.alignment import align_face
from app.vision.backbones.base import Backbone
from app.vision.detection import Detection, MtcnnDetector
from app.vision.embedder import FaceEmbedder
from app.vision.working_size import WorkingCopy

CPU = torch.device("cpu")
GROUP_PHOTOS = ("couple.jpg", "selfie-many-people.jpg", "two_people.jpg")


def corners(detection: Detection) -> NDArray[np.float64]:
    box = detection.box
    return np.array([box.x1, box.y1, box.x2, box.y2])


def face_side(detection: Detection) -> float:
    return min(detection.box.width, detection.box.height)


def test_a_photo_within_the_working_size_is_searched_as_it_is() -> None:
    photo = Image.new("RGB", (1920, 1080))
    working = WorkingCopy.of(photo, max_side=1920)
    assert working.image is photo and working.scale == 1.0
    assert WorkingCopy.of(Image.new("RGB", (8000, 100)), max_side=None).scale == 1.0


def test_working_pixels_map_to_the_centres_of_the_pixels_they_cover() -> None:
    """Oracle by hand: shrunk 4 times, working pixel i covers photo pixels 4i…4i + 3."""
    working = WorkingCopy.of(Image.new("RGB", (6000, 4000)), max_side=1500)
    assert working.image.size == (1500, 1000)
    assert (working.scale_x, working.scale_y) == (4.0, 4.0)
    points = np.array([[0.0, 0.0], [1499.0, 999.0], [10.25, 2.0]])
    expected = np.array([[1.5, 1.5], [5997.5, 3997.5], [42.5, 9.5]])
    np.testing.assert_allclose(working.to_full(points), expected)


def test_the_working_copy_is_the_area_mean_of_the_photo() -> None:
    """A photo of 3×3 blocks shrunk 3 times gives back exactly the photo the blocks came from."""
    small = np.random.default_rng(0).integers(0, 256, (40, 60, 3), dtype=np.uint8)
    blocks = Image.fromarray(small).resize((180, 120), Image.Resampling.NEAREST)
    working = WorkingCopy.of(blocks, max_side=60)
    assert np.array_equal(np.asarray(working.image), small)


@pytest.mark.parametrize("name", GROUP_PHOTOS)
def test_faces_found_on_the_working_copy_are_reported_in_the_photos_pixels(
    faces_dir: Path, name: str
) -> None:
    """Oracle: a photo blown up 3× in 3×3 blocks has that photo as its working copy, so its
    faces must be the photo's own faces, mapped exactly: x ↦ 3x + 1 (pixel centres)."""
    photo = Image.open(faces_dir / "multi_face" / name).convert("RGB")
    detector = MtcnnDetector(device=CPU, max_side=max(photo.size))
    own = detector.detect(photo)
    blown_up = photo.resize((photo.width * 3, photo.height * 3), Image.Resampling.NEAREST)
    found = detector.detect(blown_up)
    assert len(found) == len(own) >= 2
    for small, large in zip(own, found, strict=True):
        np.testing.assert_allclose(corners(large), corners(small) * 3 + 1, atol=1e-6)
        np.testing.assert_allclose(large.landmarks, small.landmarks * 3 + 1, atol=1e-6)
        assert large.probability == pytest.approx(small.probability, abs=1e-6)


@pytest.mark.parametrize("name", GROUP_PHOTOS)
def test_a_smoothly_enlarged_photo_gives_its_faces_three_times_larger(
    faces_dir: Path, name: str
) -> None:
    """A bicubic 3× enlargement shrunk back is not quite the photo (bicubic overshoots at
    edges), so MTCNN's crops differ by a grey level here and there and its regression
    moves a box or a landmark by up to 3.3 % of the face's side on these photos. 5 % of
    the side (an eighth of the distance between the eyes) still catches any mapping
    error: a missed scale or offset moves them by a whole face or by ≥ 1 working pixel
    on the smallest faces, which is ≥ 6 % of a 50-pixel face."""
    photo = Image.open(faces_dir / "multi_face" / name).convert("RGB")
    detector = MtcnnDetector(device=CPU, max_side=max(photo.size))
    own = detector.detect(photo)
    enlarged = photo.resize((photo.width * 3, photo.height * 3), Image.Resampling.BICUBIC)
    found = detector.detect(enlarged)
    assert len(found) == len(own)
    for small in own:
        expected = corners(small) * 3 + 1
        large = min(found, key=lambda face: float(np.abs(corners(face) - expected).max()))
        tolerance = 0.05 * 3 * face_side(small)
        assert np.abs(corners(large) - expected).max() <= tolerance
        assert np.abs(large.landmarks - (small.landmarks * 3 + 1)).max() <= tolerance


def detail(chip: NDArray[np.uint8]) -> float:
    """Mean absolute difference between neighbouring grey pixels: what blur takes away."""
    grey = chip.astype(np.float64).mean(axis=2)
    return float(np.abs(np.diff(grey, axis=0)).mean() + np.abs(np.diff(grey, axis=1)).mean())


def test_faces_of_a_large_photo_are_aligned_from_the_full_photo(
    dlib_backbone: Backbone, faces_dir: Path
) -> None:
    """Faces searched on a copy 4× smaller are cut from the photo itself: their chips are
    the photo's, sharper than the copy's would be (faces of 330 px against 85 px, for a
    150 px chip), and embed as when the photo is searched at full size."""
    photo = Image.open(faces_dir / "multi_face" / "couple.jpg").convert("RGB")
    shrunk = FaceEmbedder(detector=MtcnnDetector(device=CPU, max_side=320), backbone=dlib_backbone)
    full = FaceEmbedder(detector=MtcnnDetector(device=CPU, max_side=None), backbone=dlib_backbone)
    working = WorkingCopy.of(photo, max_side=320)
    template = dlib_backbone.template
    faces, full_size_faces = shrunk.embed_image(photo), full.embed_image(photo)
    assert len(faces) == len(full_size_faces) == 2
    for face in faces:
        assert np.array_equal(face.chip, align_face(photo, face.detection.landmarks, template))
        on_copy = (face.detection.landmarks + 0.5) / working.scale - 0.5
        assert detail(face.chip) > 1.3 * detail(align_face(working.image, on_copy, template))
        nearest = max(float(face.embedding @ other.embedding) for other in full_size_faces)
        assert nearest > 0.98
