"""Searching large photos for faces on a smaller working copy.

Detection's memory and time grow with the pixels it scans, and a 36-megapixel
photo cost MTCNN about 5 GB and 40 s. Detection therefore runs on a copy no
longer than a working size, and what it finds is mapped back to the full
photo's pixels, from which the face is then aligned at full detail.
"""

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray
from PIL import Image

# Measured on a 6000 × 6000 photo in a real server: 1600 keeps a whole probe near
# 250 MB (144 MB of it the decoded photo), 1920 took 300-320 MB. A 1920 × 1080 CCTV
# still is searched 1.2 times smaller, for faces from 24 px rather than 20.
DEFAULT_DETECTION_MAX_SIDE = 1600


@dataclass(frozen=True)
class WorkingCopy:
    """A photo to detect in, no longer than `max_side`, and how it maps to the full photo.

    `scale_x` and `scale_y` are full-photo pixels per working pixel (1 when
    the photo was small enough to search as it is, in which case `image` is
    the photo itself, not a copy).
    """

    image: Image.Image
    scale_x: float = 1.0
    scale_y: float = 1.0

    @classmethod
    def of(cls, image: Image.Image, *, max_side: int | None) -> "WorkingCopy":
        """`image` itself if its longer side is at most `max_side` (or there is no limit),
        else a copy shrunk to that side, each working pixel the mean of the pixels it covers."""
        if max_side is None or max(image.size) <= max_side:
            return cls(image)
        ratio = max_side / max(image.size)
        size = (max(1, round(image.width * ratio)), max(1, round(image.height * ratio)))
        # An area mean, as MTCNN's own pyramid shrinks: the copy looks like the photo
        # a camera of that resolution would have taken (0.14 s for 36 megapixels).
        small = image.resize(size, Image.Resampling.BOX)
        return cls(small, scale_x=image.width / size[0], scale_y=image.height / size[1])

    @property
    def scale(self) -> float:
        """How many times smaller the working copy is (the larger of the two axes' factors)."""
        return max(self.scale_x, self.scale_y)

    def to_full(self, points: NDArray[np.float64]) -> NDArray[np.float64]:
        """(…, 2) working-copy (x, y) points in full-photo pixels.

        Pixel centres sit at integer coordinates (MTCNN's and the aligner's
        convention), and working pixel i covers full pixels [i·s, (i + 1)·s),
        so its centre is at (i + ½)·s − ½.
        """
        if self.scale_x == 1.0 and self.scale_y == 1.0:
            return points
        scale = np.array([self.scale_x, self.scale_y])
        mapped: NDArray[np.float64] = (points + 0.5) * scale - 0.5
        return mapped
