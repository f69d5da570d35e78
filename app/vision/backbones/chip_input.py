"""What backbones take: N×S×S×3 uint8 RGB chips (S = 150 for dlib's), checked, as input."""

import numpy as np
import torch
from numpy.typing import NDArray

from app.vision.backbones.dlib_resnet import INPUT_SIZE


def check_chips(chips: NDArray[np.uint8], size: int = INPUT_SIZE) -> None:
    """Refuse anything but a uint8 N×size×size×3 array, naming what was given."""
    expected = (size, size, 3)
    if chips.dtype != np.uint8 or chips.ndim != 4 or chips.shape[1:] != expected:
        raise ValueError(f"chips must be uint8 Nx{size}x{size}x3, got {chips.dtype} {chips.shape}")


def chip_pixels(chips: NDArray[np.uint8], device: torch.device) -> torch.Tensor:
    """The chips as an N×3×S×S float tensor (0..255) on `device`.

    NHWC viewed as NCHW is already channels_last, the layout the folded
    networks run in. torch.from_numpy warns on read-only arrays: "W" copies
    those (only those).
    """
    pixels = torch.from_numpy(np.require(chips, requirements=("C", "W"))).to(device)
    return pixels.permute(0, 3, 1, 2).float()
