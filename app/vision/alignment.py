"""Aligning a detected face onto a backbone's chip with a similarity transform.

A backbone is trained on faces whose eyes, nose and mouth sit at fixed places
in its chip. Given MTCNN's five landmarks, the least-squares similarity
transform (rotation, uniform scale, translation: no shear, so the face keeps
its shape) onto the backbone's `AlignmentTemplate` says where each chip pixel
comes from in the photo.

Coordinates follow the pixel-index convention used by MTCNN and dlib: the
centre of pixel (column i, row j) is at (i, j).
"""

import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray
from PIL import Image

from app.vision.alignment_template import AlignmentTemplate


@dataclass(frozen=True)
class SimilarityTransform:
    """x' = s·R(θ)·x + t, stored as a = s·cos θ, b = s·sin θ and (tx, ty)."""

    a: float
    b: float
    tx: float
    ty: float

    @property
    def scale(self) -> float:
        return math.hypot(self.a, self.b)

    @property
    def rotation(self) -> float:
        """Rotation angle in radians."""
        return math.atan2(self.b, self.a)

    def matrix(self) -> NDArray[np.float64]:
        """The 2×3 affine matrix [[a, −b, tx], [b, a, ty]]."""
        return np.array([[self.a, -self.b, self.tx], [self.b, self.a, self.ty]])

    def apply(self, points: NDArray[np.float64]) -> NDArray[np.float64]:
        """Map (N, 2) points."""
        return points @ self.matrix()[:, :2].T + self.matrix()[:, 2]

    def inverse(self) -> "SimilarityTransform":
        """The transform that maps back, so that `t.inverse().apply(t.apply(p)) == p`."""
        norm = self.a**2 + self.b**2
        a, b = self.a / norm, -self.b / norm
        return SimilarityTransform(
            a=a, b=b, tx=-(a * self.tx - b * self.ty), ty=-(b * self.tx + a * self.ty)
        )


def estimate_similarity(
    source: NDArray[np.float64], target: NDArray[np.float64]
) -> SimilarityTransform:
    """The similarity transform minimising Σ‖T(source_i) − target_i‖² (linear least squares).

    With the parameterisation (a, b, tx, ty) the model is linear, so the
    optimum is exact and can never reflect the face.
    """
    source = np.asarray(source, dtype=np.float64)
    target = np.asarray(target, dtype=np.float64)
    if source.shape != target.shape or source.ndim != 2 or source.shape[1] != 2:
        raise ValueError(f"need two (N, 2) point sets, got {source.shape} and {target.shape}")
    if source.shape[0] < 2:
        raise ValueError("a similarity transform needs at least two points")
    x, y = source[:, 0], source[:, 1]
    ones, zeros = np.ones_like(x), np.zeros_like(x)
    design = np.vstack(
        [np.column_stack([x, -y, ones, zeros]), np.column_stack([y, x, zeros, ones])]
    )
    observed = np.concatenate([target[:, 0], target[:, 1]])
    (a, b, tx, ty), *_ = np.linalg.lstsq(design, observed, rcond=None)
    return SimilarityTransform(a=float(a), b=float(b), tx=float(tx), ty=float(ty))


def align_face(
    image: Image.Image, landmarks: NDArray[np.float64], template: AlignmentTemplate
) -> NDArray[np.uint8]:
    """The face with `landmarks` in `image` (RGB) as `template`'s chip (S×S×3 uint8)."""
    return np.asarray(warp_to_chip(image, landmarks, template).convert("RGB"), dtype=np.uint8)


def warp_to_chip(
    image: Image.Image, landmarks: NDArray[np.float64], template: AlignmentTemplate
) -> Image.Image:
    """Warp the face with `landmarks` in `image` onto `template`'s chip, in `image`'s mode.

    A face much larger than the chip is first shrunk by an integer box filter
    (`Image.reduce`), so that the final bilinear warp never skips pixels: one
    bilinear sample per chip pixel from a 600-pixel face would alias badly.
    """
    to_chip = estimate_similarity(landmarks, template.as_array())
    region, to_chip = _crop_around_chip(image, to_chip, template.size)
    reduction = max(1, math.floor(1.0 / to_chip.scale))
    if reduction > 1:
        region = region.reduce(reduction)
        to_chip = _compose_scale(to_chip, reduction)
    return _warp(region, to_chip.inverse(), template.size)


def _crop_around_chip(
    image: Image.Image, to_chip: SimilarityTransform, size: int
) -> tuple[Image.Image, SimilarityTransform]:
    """Cut out the part of `image` the chip can see, so shrinking it stays cheap."""
    corners = np.array([[0, 0], [size - 1, 0], [0, size - 1], [size - 1, size - 1]], float)
    seen = to_chip.inverse().apply(corners)
    margin = 2.0 / to_chip.scale
    left = max(0, math.floor(seen[:, 0].min() - margin))
    top = max(0, math.floor(seen[:, 1].min() - margin))
    right = min(image.width, math.ceil(seen[:, 0].max() + margin) + 1)
    bottom = min(image.height, math.ceil(seen[:, 1].max() + margin) + 1)
    if right <= left or bottom <= top:
        return image, to_chip
    shifted = SimilarityTransform(
        a=to_chip.a,
        b=to_chip.b,
        tx=to_chip.tx + to_chip.a * left - to_chip.b * top,
        ty=to_chip.ty + to_chip.b * left + to_chip.a * top,
    )
    return image.crop((left, top, right, bottom)), shifted


def _compose_scale(to_chip: SimilarityTransform, reduction: int) -> SimilarityTransform:
    """Account for `Image.reduce(reduction)`: reduced pixel i covers original pixels
    [r·i, r·i + r − 1], so its centre is at r·i + (r − 1)/2."""
    offset = (reduction - 1) / 2.0
    return SimilarityTransform(
        a=to_chip.a * reduction,
        b=to_chip.b * reduction,
        tx=to_chip.tx + (to_chip.a - to_chip.b) * offset,
        ty=to_chip.ty + (to_chip.b + to_chip.a) * offset,
    )


def _warp(image: Image.Image, from_chip: SimilarityTransform, size: int) -> Image.Image:
    """Sample `image` at `from_chip(q)` for every chip pixel q (bilinear, black outside).

    Pillow samples in the pixel-area convention (centres at i + ½), so the
    transform is shifted by ½ on both sides.
    """
    matrix = from_chip.matrix()
    linear = matrix[:, :2]
    shift = matrix[:, 2] + 0.5 - linear.sum(axis=1) * 0.5
    coefficients = (linear[0, 0], linear[0, 1], shift[0], linear[1, 0], linear[1, 1], shift[1])
    return image.transform(
        (size, size), Image.Transform.AFFINE, coefficients, resample=Image.Resampling.BILINEAR
    )
