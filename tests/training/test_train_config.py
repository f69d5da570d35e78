"""Run settings: checked when made, carried in checkpoints, compared on resume."""

from pathlib import Path

import pytest

from app.training.network import BLOCKS
from app.training.train_config import TrainConfig


def test_bad_settings_fail_when_the_config_is_made(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="unknown loss"):
        TrainConfig(checkpoint_dir=tmp_path, loss="arcface")
    with pytest.raises(ValueError, match="no miner 'pairs'"):
        TrainConfig(checkpoint_dir=tmp_path, loss="triplet", miner="pairs")
    with pytest.raises(ValueError, match="unknown optimizer"):
        TrainConfig(checkpoint_dir=tmp_path, optimizer="lbfgs")
    with pytest.raises(ValueError, match="freeze_depth"):
        TrainConfig(checkpoint_dir=tmp_path, freeze_depth=9)
    with pytest.raises(ValueError, match="at least 2"):
        TrainConfig(checkpoint_dir=tmp_path, m_per_class=1)
    with pytest.raises(ValueError, match="fraction"):
        TrainConfig(checkpoint_dir=tmp_path, composites=1.0)
    with pytest.raises(ValueError, match="composites need paired views"):
        TrainConfig(checkpoint_dir=tmp_path, composites=0.5, views="single")
    with pytest.raises(ValueError, match="pos_margin < neg_margin"):
        TrainConfig(checkpoint_dir=tmp_path, loss="contrastive", pos_margin=0.5, neg_margin=0.5)
    with pytest.raises(ValueError, match="<= 2"):
        TrainConfig(checkpoint_dir=tmp_path, loss="contrastive", neg_margin=2.5)


def test_defaults_and_derived_values(tmp_path: Path) -> None:
    config = TrainConfig(checkpoint_dir=tmp_path, m_per_class=4, classes_per_batch=8)
    assert config.batch_size == 32
    assert config.miner_name == "semihard"
    assert TrainConfig(checkpoint_dir=tmp_path, loss="contrastive").miner_name == "pairs"


def test_the_default_recipe_keeps_the_stem_and_two_stages_as_dlib_trained_them(
    tmp_path: Path,
) -> None:
    frozen = BLOCKS[: TrainConfig(checkpoint_dir=tmp_path).freeze_depth]
    assert frozen == ("stem", "stage1", "stage2")


def test_json_round_trip(tmp_path: Path) -> None:
    config = TrainConfig(
        checkpoint_dir=tmp_path / "run", head_dim=64, miner="hard", reference="batch"
    )
    assert TrainConfig.from_json(config.to_json()) == config


def test_resuming_may_change_where_and_how_long_but_not_what(tmp_path: Path) -> None:
    saved = TrainConfig(checkpoint_dir=tmp_path, margin=0.2, epochs=5)
    longer = TrainConfig(checkpoint_dir=tmp_path / "moved", margin=0.2, epochs=9, device="cpu")
    assert longer.conflicts_with(saved) == []
    changed = TrainConfig(checkpoint_dir=tmp_path, margin=0.3, lr=1e-4)
    assert changed.conflicts_with(saved) == ["margin", "lr"]


def test_a_margin_the_loss_never_reads_does_not_stop_a_resume(tmp_path: Path) -> None:
    saved = TrainConfig(checkpoint_dir=tmp_path, pos_margin=0.0, neg_margin=1.0)
    assert TrainConfig(checkpoint_dir=tmp_path).conflicts_with(saved) == []
    contrastive = TrainConfig(checkpoint_dir=tmp_path, loss="contrastive", neg_margin=1.0)
    assert TrainConfig(checkpoint_dir=tmp_path, loss="contrastive").conflicts_with(contrastive) == [
        "neg_margin"
    ]
    assert (
        TrainConfig(checkpoint_dir=tmp_path, loss="contrastive", margin=0.2).conflicts_with(
            TrainConfig(checkpoint_dir=tmp_path, loss="contrastive")
        )
        == []
    )
