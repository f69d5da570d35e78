"""Checkpoints: resumable state each epoch, the newest few kept, weights that load back exactly."""

from pathlib import Path

import numpy as np
import pytest
import torch

from app.training.checkpoints import (
    TrainingState,
    latest_state_path,
    load_state,
    load_trained_network,
    save_state,
    save_weights,
)
from app.training.network import EmbeddingNetwork, embed_chips
from app.vision.backbones.dlib_resnet import DlibFaceResNet

CPU = torch.device("cpu")


def state(epoch: int) -> TrainingState:
    weights = {"w": torch.full((2, 2), float(epoch))}
    return TrainingState(
        epoch=epoch,
        network=weights,
        optimizer={"state": {}, "param_groups": [{"lr": 0.1, "params": [0]}]},
        config={"margin": 0.2, "miner": None},
        epoch_losses=[1.0 / e for e in range(1, epoch + 1)],
    )


def test_state_round_trip_and_only_the_newest_are_kept(tmp_path: Path) -> None:
    assert latest_state_path(tmp_path / "missing") is None
    for epoch in range(1, 13):
        save_state(tmp_path, state(epoch), keep=2)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["epoch_0011.pt", "epoch_0012.pt"]
    latest = latest_state_path(tmp_path)
    assert latest is not None and latest.name == "epoch_0012.pt"
    loaded = load_state(latest, device=CPU)
    assert loaded.epoch == 12 and loaded.config == {"margin": 0.2, "miner": None}
    assert loaded.epoch_losses == pytest.approx([1.0 / e for e in range(1, 13)])
    assert torch.equal(loaded.network["w"], torch.full((2, 2), 12.0))


@pytest.mark.parametrize("head_dim", [None, 24])
def test_weights_load_into_a_fresh_network_that_embeds_identically(
    tmp_path: Path, head_dim: int | None
) -> None:
    torch.manual_seed(0)
    trained = EmbeddingNetwork(DlibFaceResNet(), head_dim=head_dim, seed=3)
    save_weights(tmp_path, trained)
    loaded = load_trained_network(tmp_path, device=CPU)
    chips = np.random.default_rng(0).integers(0, 256, size=(2, 150, 150, 3), dtype=np.uint8)
    assert np.array_equal(
        embed_chips(trained, chips, device=CPU), embed_chips(loaded, chips, device=CPU)
    )
    assert loaded.embedding_dim == (head_dim or 128)


def test_missing_weights_say_so(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="train first"):
        load_trained_network(tmp_path, device=CPU)
