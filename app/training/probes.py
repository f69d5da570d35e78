"""CCTV-like evaluation probes, made from the original photo of a cached chip.

The damage is done to the whole photo, at the photo's own scale, so that the
face really is 24–32 px wide when it is shrunk; then the face is aligned
again. Alignment uses the landmarks found on the *clean* photo: evaluation
measures how well the network recognises a poor face, not whether MTCNN
still finds one (a miss would drop the probe and flatter the figures).

Each probe's damage is drawn from a generator seeded by (seed, index), so a
probe looks the same whatever order or subset the probes are made in.
"""

from collections.abc import Sequence

import numpy as np
from numpy.typing import NDArray
from PIL import Image

from app.training.chips import ChipSet
from app.training.degrade import cctv_degrade
from app.vision.alignment import align_face
from app.vision.alignment_template import DLIB_150, AlignmentTemplate
from app.vision.images import decode_image


def cctv_probe_chip(
    chips: ChipSet, index: int, *, seed: int, template: AlignmentTemplate = DLIB_150
) -> NDArray[np.uint8]:
    """Chip `index` remade from its photo after `cctv_degrade` (face 24–32 px, σ 1, JPEG 30)."""
    record = chips.records[index]
    photo = np.asarray(decode_image(chips.photo_path(index).read_bytes()), dtype=np.uint8)
    rng = np.random.default_rng([seed, index])
    degraded = cctv_degrade(photo, face_width=record.box_width, rng=rng)
    landmarks = np.asarray(record.landmarks, dtype=np.float64)
    return align_face(Image.fromarray(degraded), landmarks, template)


def cctv_probe_chips(
    chips: ChipSet,
    indices: Sequence[int],
    *,
    seed: int,
    template: AlignmentTemplate = DLIB_150,
) -> NDArray[np.uint8]:
    """`cctv_probe_chip` for each of `indices`, stacked N×S×S×3."""
    made = [cctv_probe_chip(chips, i, seed=seed, template=template) for i in indices]
    if not made:
        return np.zeros((0, template.size, template.size, 3), dtype=np.uint8)
    return np.stack(made)
