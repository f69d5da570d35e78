"""CCTV degradation and training augmentation: deterministic, shape-keeping, and really lossy."""

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from app.training.degrade import (
    AugmentationSettings,
    augment_chip,
    cctv_degrade,
    shrink_and_restore,
    to_greyscale,
)

# dlib's aligned chips have a face about 120 px wide in the 150 px chip.
CHIP_FACE_WIDTH = 120.0


@pytest.fixture(scope="module")
def chip(faces_dir: Path) -> np.ndarray:
    """A real 150×150 face chip (dlib's own alignment)."""
    path = sorted((faces_dir / "johns" / "John_Salley").iterdir())[0]
    with Image.open(path) as image:
        return np.array(image.convert("RGB"), dtype=np.uint8)


def detail(image: np.ndarray) -> float:
    """High-frequency energy: the mean squared discrete Laplacian of the luma."""
    grey = image.astype(np.float64) @ np.array([0.299, 0.587, 0.114])
    laplacian = (
        -4 * grey[1:-1, 1:-1] + grey[:-2, 1:-1] + grey[2:, 1:-1] + grey[1:-1, :-2] + grey[1:-1, 2:]
    )
    return float(np.mean(laplacian**2))


def test_cctv_degradation_is_deterministic_for_a_seed(chip: np.ndarray) -> None:
    first = cctv_degrade(chip, face_width=CHIP_FACE_WIDTH, rng=np.random.default_rng(7))
    again = cctv_degrade(chip, face_width=CHIP_FACE_WIDTH, rng=np.random.default_rng(7))
    other = cctv_degrade(chip, face_width=CHIP_FACE_WIDTH, rng=np.random.default_rng(8))
    assert np.array_equal(first, again)
    assert not np.array_equal(first, other)


def test_cctv_degradation_keeps_shape_and_type_and_greys(chip: np.ndarray) -> None:
    degraded = cctv_degrade(chip, face_width=CHIP_FACE_WIDTH, rng=np.random.default_rng(0))
    assert degraded.shape == chip.shape and degraded.dtype == np.uint8
    assert np.array_equal(degraded[..., 0], degraded[..., 1])
    assert np.array_equal(degraded[..., 1], degraded[..., 2])
    colour = cctv_degrade(
        chip, face_width=CHIP_FACE_WIDTH, rng=np.random.default_rng(0), greyscale=False
    )
    assert not np.array_equal(colour[..., 0], colour[..., 1])


def test_cctv_degradation_destroys_fine_detail(chip: np.ndarray) -> None:
    degraded = cctv_degrade(chip, face_width=CHIP_FACE_WIDTH, rng=np.random.default_rng(0))
    # Greyscale alone keeps most of the detail; the whole chain removes most of it.
    assert detail(to_greyscale(chip)) > 0.8 * detail(chip)
    assert detail(degraded) < 0.25 * detail(chip)


def test_a_smaller_face_loses_more_detail(chip: np.ndarray) -> None:
    # Face 120 px → 60 px (scale ½) and → 24 px (scale ⅕).
    mild = shrink_and_restore(chip, scale=0.5)
    severe = shrink_and_restore(chip, scale=0.2)
    assert detail(severe) < detail(mild) < detail(chip)
    assert shrink_and_restore(chip, scale=1.5) is chip


def test_augmentation_is_deterministic_and_keeps_shape(chip: np.ndarray) -> None:
    views = [
        augment_chip(chip, face_width=CHIP_FACE_WIDTH, rng=np.random.default_rng(seed))
        for seed in (3, 3, 4)
    ]
    assert np.array_equal(views[0], views[1])
    assert not np.array_equal(views[0], views[2])
    assert all(view.shape == chip.shape and view.dtype == np.uint8 for view in views)


def test_augmentation_parts_can_be_switched_on_and_off(chip: np.ndarray) -> None:
    still = AugmentationSettings(
        flip_probability=1.0, brightness=0.0, contrast=0.0, saturation=0.0, cctv_probability=0.0
    )
    mirrored = augment_chip(
        chip, face_width=CHIP_FACE_WIDTH, rng=np.random.default_rng(0), settings=still
    )
    assert np.array_equal(mirrored, chip[:, ::-1])
    always_cctv = AugmentationSettings(flip_probability=0.0, cctv_probability=1.0)
    damaged = augment_chip(
        chip, face_width=CHIP_FACE_WIDTH, rng=np.random.default_rng(0), settings=always_cctv
    )
    assert detail(damaged) < 0.5 * detail(chip)
