"""EdgeFace-XS and EdgeFace-XXS behind the `Backbone` protocol: 112×112 ArcFace chips, 512-d.

The weights are float32 conversions of the published int8 files, committed
under `models/<name>/` with their licences (`lineup models import-edgeface`
makes them). Inference runs in channels_last under `inference_mode`; on CUDA
in half precision, which keeps every embedding within cosine 0.998 of float32
(the tests check it on real chips). On a CPU the default is float32, so an
embedding does not depend on the batch it was computed in; bfloat16 is
offered for speed.
"""

import hashlib
from pathlib import Path
from typing import Literal

import numpy as np
import torch
import torch.nn.functional as F  # noqa: N812 - the conventional alias
from numpy.typing import NDArray
from safetensors import SafetensorError
from safetensors.torch import load as load_safetensors

from app.vision.alignment_template import ARCFACE_112, AlignmentTemplate
from app.vision.backbones.chip_input import check_chips, chip_pixels
from app.vision.backbones.edgeface_network import (
    EMBEDDING_DIM,
    INPUT_SIZE,
    build_edgeface_network,
)
from app.vision.backbones.weights import VERSION_HEX_DIGITS, WeightsMissing

WEIGHTS_FILE = "weights.safetensors"

Precision = Literal["auto", "float32", "bfloat16", "float16"]


class EdgeFaceWeightsInvalid(ValueError):
    """A weights file that does not hold this EdgeFace network."""


def edgeface_weights_path(name: str, models_dir: Path | None) -> Path:
    """Where model `name`'s converted weights live, or `WeightsMissing` saying how to make
    them."""
    if models_dir is None:
        raise WeightsMissing(f"{name} needs LINEUP_MODELS_DIR (its weights are under models/)")
    path = models_dir / name / WEIGHTS_FILE
    if not path.is_file():
        raise WeightsMissing(
            f"{name}'s weights are not at {path}; convert the published files with "
            "`lineup models import-edgeface ../shared/models/edgeface`"
        )
    return path


def load_edgeface_network(name: str, path: Path) -> tuple[torch.nn.Module, str]:
    """Network `name` holding the weights at `path`, and the version of those bytes."""
    data = path.read_bytes()
    network = build_edgeface_network(name)
    try:
        network.load_state_dict(load_safetensors(data))
    except (SafetensorError, RuntimeError) as error:
        raise EdgeFaceWeightsInvalid(f"{path} does not hold {name}'s weights: {error}") from None
    return network, hashlib.sha256(data).hexdigest()[:VERSION_HEX_DIGITS]


class EdgeFaceBackbone:
    """An EdgeFace network embedding 112×112 chips aligned to `ARCFACE_112`."""

    template: AlignmentTemplate = ARCFACE_112
    embedding_dim: int = EMBEDDING_DIM

    def __init__(
        self,
        *,
        name: str,
        device: torch.device,
        weights: Path | None = None,
        models_dir: Path | None = None,
        precision: Precision = "auto",
    ) -> None:
        path = weights if weights is not None else edgeface_weights_path(name, models_dir)
        if not path.is_file():
            raise WeightsMissing(f"{name} weights file not found: {path}")
        network, self.version = load_edgeface_network(name, path)
        self.name = name
        self.device = device
        self.dtype = _compute_dtype(precision, device)
        self._network = network.to(device).to(memory_format=torch.channels_last)
        self._network.requires_grad_(False)

    @property
    def input_size(self) -> int:
        """Side of the square chip, in pixels, that `embed` expects."""
        return INPUT_SIZE

    def embed(self, chips: NDArray[np.uint8]) -> NDArray[np.float32]:
        """Embed `chips` (N×112×112×3 RGB uint8) as an N×512 L2-normalised float32 array."""
        check_chips(chips, INPUT_SIZE)
        if len(chips) == 0:
            return np.zeros((0, EMBEDDING_DIM), dtype=np.float32)
        with torch.inference_mode(), self._autocast():
            pixels = chip_pixels(chips, self.device) * (2 / 255) - 1  # (x / 255 − 0.5) / 0.5
            raw = self._network(pixels.contiguous(memory_format=torch.channels_last))
            unit = F.normalize(raw.float(), dim=1)
        return unit.cpu().numpy().astype(np.float32, copy=False)

    def _autocast(self) -> torch.autocast:
        enabled = self.dtype != torch.float32
        return torch.autocast(self.device.type, dtype=self.dtype, enabled=enabled)


def _compute_dtype(precision: Precision, device: torch.device) -> torch.dtype:
    if precision == "auto":
        return torch.float16 if device.type == "cuda" else torch.float32
    return {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}[
        precision
    ]
