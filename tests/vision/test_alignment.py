"""Alignment against oracles: known transforms, and images whose every pixel is known."""

import math

import numpy as np
import pytest
from PIL import Image

from app.vision.alignment import (
    SimilarityTransform,
    align_face,
    estimate_similarity,
    warp_to_chip,
)
from app.vision.alignment_template import ARCFACE_112, DLIB_150, FACENET_160, AlignmentTemplate

CHIP_GRID = np.stack(np.meshgrid(np.arange(150.0), np.arange(150.0)), axis=-1).reshape(-1, 2)


def rotated_scaled(scale: float, angle: float, tx: float, ty: float) -> SimilarityTransform:
    return SimilarityTransform(a=scale * math.cos(angle), b=scale * math.sin(angle), tx=tx, ty=ty)


@pytest.mark.parametrize("seed", range(5))
def test_a_known_transform_is_recovered_exactly(seed: int) -> None:
    rng = np.random.default_rng(seed)
    truth = rotated_scaled(
        rng.uniform(0.2, 5), rng.uniform(-math.pi, math.pi), *rng.uniform(-300, 300, 2)
    )
    source = rng.uniform(0, 500, (5, 2))
    found = estimate_similarity(source, truth.apply(source))
    assert np.allclose(found.matrix(), truth.matrix(), atol=1e-9)


def test_noisy_points_give_the_least_squares_optimum() -> None:
    rng = np.random.default_rng(7)
    source = DLIB_150.as_array()
    target = rotated_scaled(1.8, 0.3, 40, -12).apply(source) + rng.normal(0, 2, (5, 2))
    best = estimate_similarity(source, target)

    def squared_error(params: np.ndarray) -> float:
        return float(np.sum((SimilarityTransform(*params).apply(source) - target) ** 2))

    optimum = np.array([best.a, best.b, best.tx, best.ty])
    for nudge in np.eye(4) * 1e-3:
        assert squared_error(optimum + nudge) > squared_error(optimum)
        assert squared_error(optimum - nudge) > squared_error(optimum)


def test_inverse_undoes_the_transform() -> None:
    transform = rotated_scaled(2.5, -0.7, 13, 99)
    points = np.random.default_rng(1).uniform(-50, 50, (10, 2))
    assert np.allclose(transform.inverse().apply(transform.apply(points)), points)


def test_too_few_points_are_refused() -> None:
    with pytest.raises(ValueError, match="two"):
        estimate_similarity(np.zeros((1, 2)), np.zeros((1, 2)))


@pytest.mark.parametrize("face_scale", [0.6, 1.0, 1.7, 4.6, 9.3])
def test_chip_pixels_come_from_where_the_transform_says(face_scale: float) -> None:
    """On images whose value *is* the x (or y) coordinate, each chip pixel must read the
    coordinate it maps to. Bilinear sampling and box shrinking reproduce linear
    ramps exactly, so this pins the pixel-centre convention and the shrink path."""
    chip_to_image = rotated_scaled(face_scale, 0.25, 800, 90)
    landmarks = chip_to_image.apply(DLIB_150.as_array())
    rows, columns = np.mgrid[0:2400, 0:2400].astype(np.float32)
    expected = chip_to_image.apply(CHIP_GRID)
    for axis, ramp in enumerate((columns, rows)):
        chip = warp_to_chip(Image.fromarray(ramp), landmarks, DLIB_150)
        read = np.asarray(chip, dtype=np.float64).reshape(-1)
        assert np.abs(read - expected[:, axis]).max() < 1e-3


@pytest.mark.parametrize("template", [DLIB_150, ARCFACE_112], ids=lambda t: t.name)
def test_landmarks_land_on_the_template(template: AlignmentTemplate) -> None:
    """Five coloured dots placed by a known transform end up at the template's points."""
    chip_to_image = rotated_scaled(2.2 * 150 / template.size, -0.35, 120, 260)
    landmarks = chip_to_image.apply(template.as_array())
    rows, columns = np.mgrid[0:700, 0:700]
    image = np.zeros((700, 700, 3), dtype=np.uint8)
    colours = [(255, 0, 0), (0, 255, 0), (0, 0, 255), (255, 255, 0), (255, 0, 255)]
    for (x, y), colour in zip(landmarks, colours, strict=True):
        image[(columns - x) ** 2 + (rows - y) ** 2 <= 6.6**2] = colour
    chip = align_face(Image.fromarray(image), landmarks, template).astype(np.int32)
    for (x, y), colour in zip(template.points, colours, strict=True):
        weight = np.clip(255 * 3 - np.abs(chip - colour).sum(axis=-1), 0, None)
        weight = np.where(weight > 255 * 2, weight, 0).astype(np.float64)
        ys, xs = np.mgrid[0 : template.size, 0 : template.size]
        centre = (np.sum(xs * weight) / weight.sum(), np.sum(ys * weight) / weight.sum())
        assert centre == pytest.approx((x, y), abs=0.25)


def test_large_faces_are_low_pass_filtered_before_shrinking() -> None:
    """One-pixel stripes seen 8× too large must average to grey, not alias into bands."""
    stripes = np.zeros((2000, 2000), dtype=np.uint8)
    stripes[:, ::2] = 255
    landmarks = rotated_scaled(8.0, 0.0, 200, 200).apply(DLIB_150.as_array())
    chip = align_face(Image.fromarray(stripes).convert("RGB"), landmarks, DLIB_150)
    assert chip.shape == (150, 150, 3)
    assert chip.dtype == np.uint8
    assert np.abs(chip.astype(float) - 127.5).max() < 2


@pytest.mark.parametrize("template", [DLIB_150, FACENET_160, ARCFACE_112])
def test_chip_has_the_template_size(template: AlignmentTemplate) -> None:
    landmarks = rotated_scaled(1.3, 0.1, 30, 30).apply(template.as_array())
    image = Image.new("RGB", (400, 400), (90, 90, 90))
    assert align_face(image, landmarks, template).shape == (template.size, template.size, 3)
