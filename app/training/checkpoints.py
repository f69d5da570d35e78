"""Saving and resuming fine-tuning: the full training state each epoch, and the weights alone.

A run's directory (`models/<name>/`) holds:

- `epoch_0003.pt`: what resuming needs (network and optimizer state, the
  epoch, the config, the losses so far), written with `torch.save` and read
  back with `weights_only=True`; only the newest `keep` of them are kept;
- `weights.safetensors`: the newest network weights alone, for inference
  (safetensors loads without running code; the head's size is its shape);
- `card.json`: the model card (`model_card.record_training`).

Every file is written under a temporary name and renamed into place, so an
interrupted run never leaves a half-written checkpoint behind.
"""

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import save_file
from torch import Tensor

from app.training.network import EmbeddingNetwork

# Reading the weights back is the fine-tuned backbone's job; re-exported for training code.
from app.vision.backbones.finetuned import WEIGHTS_FILE as WEIGHTS_FILE
from app.vision.backbones.finetuned import load_trained_network as load_trained_network

_STATE_NAME = re.compile(r"epoch_(\d+)\.pt")


@dataclass(frozen=True)
class TrainingState:
    """Everything needed to continue a run after `epoch` completed epochs."""

    epoch: int
    network: dict[str, Tensor]
    optimizer: dict[str, Any]
    config: dict[str, Any]
    epoch_losses: list[float]


def state_path(directory: Path, epoch: int) -> Path:
    return directory / f"epoch_{epoch:04d}.pt"


def save_state(directory: Path, state: TrainingState, *, keep: int) -> Path:
    """Write `state` as this epoch's checkpoint and delete all but the newest `keep`."""
    directory.mkdir(parents=True, exist_ok=True)
    path = state_path(directory, state.epoch)
    partial = path.with_suffix(".pt.partial")
    torch.save(
        {
            "epoch": state.epoch,
            "network": state.network,
            "optimizer": state.optimizer,
            "config": state.config,
            "epoch_losses": state.epoch_losses,
        },
        partial,
    )
    os.replace(partial, path)
    for old in _state_paths(directory)[:-keep]:
        old.unlink()
    return path


def latest_state_path(directory: Path) -> Path | None:
    """The checkpoint of the last completed epoch in `directory`, if any."""
    paths = _state_paths(directory)
    return paths[-1] if paths else None


def load_state(path: Path, *, device: torch.device) -> TrainingState:
    """A checkpoint written by `save_state`, its tensors on `device`."""
    saved = torch.load(path, map_location=device, weights_only=True)
    return TrainingState(
        epoch=int(saved["epoch"]),
        network=saved["network"],
        optimizer=saved["optimizer"],
        config=saved["config"],
        epoch_losses=[float(loss) for loss in saved["epoch_losses"]],
    )


def save_weights(directory: Path, network: EmbeddingNetwork) -> Path:
    """The network's weights alone, as `weights.safetensors`."""
    tensors = {k: v.detach().cpu().contiguous() for k, v in network.state_dict().items()}
    path = directory / WEIGHTS_FILE
    partial = directory / f"{WEIGHTS_FILE}.partial"
    save_file(tensors, partial)
    os.replace(partial, path)
    return path


def _state_paths(directory: Path) -> list[Path]:
    """Epoch checkpoints in `directory`, oldest first."""
    if not directory.is_dir():
        return []
    numbered = [
        (int(match.group(1)), path)
        for path in directory.iterdir()
        if (match := _STATE_NAME.fullmatch(path.name))
    ]
    return [path for _, path in sorted(numbered)]
