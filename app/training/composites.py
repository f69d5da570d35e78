"""Composite faces: one new person made from the aligned chips of two training people.

Fine-tuning on celeba's 199 training identities learns *those people*: a long
run lifts their CCTV-degraded rank-1 by seven points and strangers' not at
all (README, runs 19 and 21). A composite is a face the network has never
seen and no other photo shares, so what it learns from one cannot be how a
training person looks, only what damage does to a face. Chips aligned to one
template put both people's eyes, nose and mouth on the same pixels, so either
mix is still a face:

- a *morph*: the two chips blended with a weight drawn from `MORPH_WEIGHTS`;
- a *seam*: one person's eyes and brow over the other's nose and mouth, the
  seam a soft horizontal band at a height drawn from `SEAM_HEIGHTS`.

At the 24–32 px of a CCTV face a morph's double edges vanish and a seam is
no longer visible; the clean view the composite is compared with keeps them,
which is what the pretrained network is asked to recognise.

Measured on celeba, composites do not lift strangers' degraded rank-1 above
what the default recipe reaches (README, runs 23–26), so they are an option,
off by default.
"""

import numpy as np
from numpy.typing import NDArray

Pixels = NDArray[np.uint8]

MORPH_WEIGHTS = (0.35, 0.65)
SEAM_HEIGHTS = (0.45, 0.62)
"""As fractions of the chip's height: between the eyes (about 0.4) and the mouth."""
SEAM_SOFTNESS = 10.0
"""Pixels over which the seam fades from one person to the other."""


def composite_face(top: Pixels, bottom: Pixels, *, rng: np.random.Generator) -> Pixels:
    """A morph or a seam of two aligned chips of the same size, chosen at even odds."""
    if top.shape != bottom.shape:
        raise ValueError(f"chips differ in size: {top.shape} and {bottom.shape}")
    height = top.shape[0]
    if rng.random() < 0.5:
        weight = np.full((height, 1, 1), rng.uniform(*MORPH_WEIGHTS))
    else:
        seam = rng.uniform(*SEAM_HEIGHTS) * height
        rows = np.arange(height, dtype=np.float64)
        weight = np.clip((seam - rows) / SEAM_SOFTNESS + 0.5, 0.0, 1.0)[:, None, None]
    mixed = top.astype(np.float64) * weight + bottom.astype(np.float64) * (1.0 - weight)
    composite: Pixels = np.clip(np.rint(mixed), 0, 255).astype(np.uint8)
    return composite
