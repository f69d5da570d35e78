"""Choosing where torch runs: `auto` picks CUDA when the machine has it."""

from typing import Literal

import torch

DeviceName = Literal["auto", "cpu", "cuda"]


class DeviceUnavailable(RuntimeError):
    """CUDA was asked for explicitly on a machine without a usable GPU."""


def resolve_device(name: DeviceName) -> torch.device:
    """Map a device setting to a torch device; `cuda` without a GPU is an error, not a fallback."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise DeviceUnavailable(
            "LINEUP_DEVICE=cuda but torch sees no CUDA GPU; use LINEUP_DEVICE=auto or cpu"
        )
    return torch.device(name)
