"""Where each backbone expects the five facial landmarks to sit in its chip."""

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray


@dataclass(frozen=True)
class AlignmentTemplate:
    """Target positions of the five landmarks in a square chip of `size` pixels.

    Points are (x, y) in chip pixels, in MTCNN's order: left eye, right eye,
    nose, left mouth corner, right mouth corner.
    """

    name: str
    size: int
    points: tuple[tuple[float, float], ...]

    def as_array(self) -> NDArray[np.float64]:
        """The five points as a (5, 2) float64 array."""
        return np.asarray(self.points, dtype=np.float64)


DLIB_150 = AlignmentTemplate(
    name="dlib-150",
    size=150,
    # Fitted so that MTCNN-aligned chips embed like dlib's own 5-point chips
    # (mean cosine 0.994 over 77 real faces); see docs/alignment.md.
    points=(
        (49.13, 47.17),
        (103.43, 46.80),
        (75.39, 79.39),
        (51.82, 105.29),
        (102.10, 105.01),
    ),
)


FACENET_160 = AlignmentTemplate(
    name="facenet-160",
    size=160,
    # facenet-pytorch's models were trained on MTCNN box crops (margin 0)
    # resized to 160×160, not on landmark-aligned chips. These points are the
    # mean landmark positions in such crops over the 121 faces of lfw_mini
    # and deepface, so an aligned chip looks like the crops the network saw.
    points=(
        (43.55, 64.72),
        (117.49, 63.11),
        (80.89, 96.80),
        (48.48, 120.95),
        (116.87, 119.53),
    ),
)


ARCFACE_112 = AlignmentTemplate(
    name="arcface-112",
    size=112,
    # The standard template of InsightFace's ArcFace crops, on which EdgeFace was
    # trained (WebFace4M/12M, aligned the same way); from EdgeFace's model README.
    points=(
        (38.2946, 51.6963),
        (73.5318, 51.5014),
        (56.0252, 71.7366),
        (41.5493, 92.3655),
        (70.7299, 92.2041),
    ),
)
