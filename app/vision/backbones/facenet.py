"""facenet-pytorch's InceptionResnetV1 (512-d), pretrained on VGGFace2 or CASIA-WebFace.

The weights are not in any registry package, and Lineup never downloads at run
time: the operator points a setting at a local copy of the published file.
"""

from pathlib import Path

import numpy as np
import torch
from facenet_pytorch import InceptionResnetV1
from numpy.typing import NDArray

from app.vision.alignment_template import FACENET_160, AlignmentTemplate
from app.vision.backbones.weights import WeightsMissing, weights_version

RELEASES = "https://github.com/timesler/facenet-pytorch/releases/download/v2.2.9"
PUBLISHED_WEIGHTS = {
    "facenet-vggface2": ("LINEUP_FACENET_VGGFACE2_WEIGHTS", "20180402-114759-vggface2.pt"),
    "facenet-casia": ("LINEUP_FACENET_CASIA_WEIGHTS", "20180408-102900-casia-webface.pt"),
}


class FacenetBackbone:
    """InceptionResnetV1 behind the `Backbone` protocol; chips are 160×160."""

    template: AlignmentTemplate = FACENET_160
    embedding_dim = 512

    def __init__(self, *, name: str, weights: Path | None, device: torch.device) -> None:
        path = require_weights(name, weights)
        self.name = name
        self.version = weights_version(path)
        self.device = device
        self._network = _load_network(path).to(device).eval()

    @property
    def input_size(self) -> int:
        return self.template.size

    def embed(self, chips: NDArray[np.uint8]) -> NDArray[np.float32]:
        """Embed N×160×160×3 RGB chips as N×512 unit vectors."""
        if len(chips) == 0:
            return np.zeros((0, self.embedding_dim), dtype=np.float32)
        with torch.inference_mode():
            pixels = torch.from_numpy(np.ascontiguousarray(chips)).to(self.device)
            # facenet-pytorch's fixed_image_standardization; without a
            # classifier the network L2-normalises its own output.
            batch = (pixels.permute(0, 3, 1, 2).float() - 127.5) / 128.0
            vectors: NDArray[np.float32] = self._network(batch).cpu().numpy()
        return vectors.astype(np.float32, copy=False)


def require_weights(name: str, weights: Path | None) -> Path:
    """The weights path, or a `WeightsMissing` saying which setting to set and where to look."""
    setting, file_name = PUBLISHED_WEIGHTS[name]
    if weights is not None and weights.is_file():
        return weights
    found = f"{weights} does not exist" if weights is not None else f"{setting} is not set"
    raise WeightsMissing(
        f"backbone {name!r} needs its weights file, and {found}. Download "
        f"{RELEASES}/{file_name} on a connected machine, copy it here and set {setting} "
        "to its path. Lineup never downloads weights itself."
    )


def _load_network(path: Path) -> InceptionResnetV1:
    """Build the embedding network and load a facenet-pytorch state dict into it.

    The published files also hold the training classifier (`logits.*`), which an
    embedder does not use; every other tensor must match exactly.
    """
    network = InceptionResnetV1(pretrained=None, classify=False)
    state = torch.load(path, map_location="cpu", weights_only=True)
    state = {key: value for key, value in state.items() if not key.startswith("logits.")}
    network.load_state_dict(state, strict=True)
    return network
