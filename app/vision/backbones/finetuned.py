"""Fine-tuned models as backbones: `models/<name>/weights.safetensors`, chosen by folder name.

Training writes the folder (`app.training.trainer`); here it is only read. The
version is the hash of the very bytes that were loaded, so a file replaced
between hashing and loading cannot give weights a version they do not have.
"""

import hashlib
import re
from pathlib import Path

import numpy as np
import torch
from numpy.typing import NDArray
from safetensors import SafetensorError, safe_open
from safetensors.torch import load as load_safetensors

from app.vision.alignment_template import DLIB_150, AlignmentTemplate
from app.vision.backbones.chip_input import check_chips, chip_pixels
from app.vision.backbones.dlib_resnet import (
    EMBEDDING_DIM,
    INPUT_SIZE,
    DlibFaceResNet,
    fold_for_inference,
)
from app.vision.backbones.embedding_network import EmbeddingNetwork
from app.vision.backbones.weights import VERSION_HEX_DIGITS, WeightsMissing

WEIGHTS_FILE = "weights.safetensors"
BUILT_IN_NAMES = frozenset(
    {"dlib-resnet", "edgeface-xs", "edgeface-xxs", "facenet-vggface2", "facenet-casia"}
)
"""The registry's built-in backbones. Some keep their weights under the models dir too
(EdgeFace's conversions), so their folders are not fine-tuned models."""
# A model's name is a folder name under the models dir: no separators, no leading dot.
MODEL_NAME = re.compile(r"[a-z0-9][a-z0-9._-]{0,63}")


class InvalidWeights(ValueError):
    """A weights file that is not a fine-tuned model's: truncated, or another network's."""


def is_model_name(name: str) -> bool:
    """Whether `name` may name a fine-tuned model (and so a folder under the models dir)."""
    return MODEL_NAME.fullmatch(name) is not None and name not in BUILT_IN_NAMES


def finetuned_models(models_dir: Path) -> list[str]:
    """The names of the folders under `models_dir` that hold fine-tuned weights, sorted."""
    if not models_dir.is_dir():
        return []
    return sorted(
        entry.name
        for entry in models_dir.iterdir()
        if is_model_name(entry.name) and (entry / WEIGHTS_FILE).is_file()
    )


def load_trained_network(directory: Path, *, device: torch.device) -> EmbeddingNetwork:
    """A fresh network holding `directory`'s `weights.safetensors`, in eval mode on `device`."""
    network, _ = _load(directory, device=device)
    return network


def _load(directory: Path, *, device: torch.device) -> tuple[EmbeddingNetwork, str]:
    """The network and the version (hash) of the bytes it was loaded from."""
    path = directory / WEIGHTS_FILE
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise WeightsMissing(f"no fine-tuned weights at {path}; train first") from None
    try:
        tensors = load_safetensors(data)
        head_dim = tensors["head.weight"].shape[0] if "head.weight" in tensors else None
        network = EmbeddingNetwork(DlibFaceResNet(), head_dim=head_dim)
        network.load_state_dict(tensors)
    except (SafetensorError, RuntimeError) as error:  # not safetensors; not this network's
        raise InvalidWeights(
            f"{path} does not hold a fine-tuned model's weights: {error}"
        ) from None
    version = hashlib.sha256(data).hexdigest()[:VERSION_HEX_DIGITS]
    return network.to(device).eval(), version


class FineTunedBackbone:
    """A fine-tuned dlib ResNet (and head) behind the `Backbone` protocol; 150×150 chips.

    Its chips are aligned like dlib's (`DLIB_150`), since fine-tuning starts
    from dlib's network and trains on chips cut that way.
    """

    template: AlignmentTemplate = DLIB_150

    def __init__(self, *, name: str, directory: Path, device: torch.device) -> None:
        network, self.version = _load(directory, device=device)
        self.name = name
        self.device = device
        self.embedding_dim: int = network.embedding_dim
        # The same function, faster: affines folded into their convolutions.
        self._backbone = fold_for_inference(network.backbone)
        self._head = None if network.head is None else network.head.requires_grad_(False)

    @property
    def input_size(self) -> int:
        """Side of the square chip, in pixels, that `embed` expects."""
        return INPUT_SIZE

    def embed(self, chips: NDArray[np.uint8]) -> NDArray[np.float32]:
        """Embed `chips` (N×150×150×3 RGB uint8) as an N×D L2-normalised float32 array."""
        check_chips(chips)
        if len(chips) == 0:
            return np.zeros((0, self.embedding_dim), dtype=np.float32)
        with torch.inference_mode():
            descriptors = self._backbone(chip_pixels(chips, self.device))
            if self._head is not None:
                descriptors = self._head(descriptors)
            unit = torch.nn.functional.normalize(descriptors, dim=1)
            return unit.cpu().numpy().astype(np.float32, copy=False)


def finetuned_embedding_dim(directory: Path) -> int:
    """The size of a fine-tuned model's embeddings, read from its weights file's header
    (the head's shape) without loading the weights."""
    with safe_open(directory / WEIGHTS_FILE, framework="pt") as weights:
        if "head.weight" not in weights.keys():  # noqa: SIM118 - a safetensors handle, not a dict
            return EMBEDDING_DIM
        return int(weights.get_slice("head.weight").get_shape()[0])
