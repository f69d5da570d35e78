"""A short real fine-tuning run on a few identities: the loss falls, the checkpoint loads back.

Four lfw_mini identities × two photos, m = 2 photos of each of 4 identities per
batch, two epochs of one batch: every batch is the same 8 chips, so the run is
plain gradient descent on one batch and the loss must fall. A margin of 1.0
keeps every triplet active (same-person chords are about 0.5, different-person
ones about 1), so the average over violating triplets is the average over all.
"""

import json
import threading
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pytest
import torch

from app.training.checkpoints import (
    WEIGHTS_FILE,
    TrainingState,
    latest_state_path,
    load_trained_network,
    save_state,
)
from app.training.chips import ChipSet
from app.training.dataset import ChipDataset
from app.training.degrade import AugmentationSettings
from app.training.losses import distillation_loss
from app.training.network import embed_chips, pretrained_network, pretrained_reference
from app.training.train_config import TrainConfig
from app.training.trainer import TrainProgress, TrainResult, train
from app.vision.backbones.weights import weights_version

CPU = torch.device("cpu")


def config(checkpoint_dir: Path, **changes: object) -> TrainConfig:
    base = TrainConfig(
        checkpoint_dir=checkpoint_dir,
        loss="triplet",
        miner="all",
        margin=1.0,
        epochs=2,
        m_per_class=2,
        classes_per_batch=4,
        batches_per_epoch=1,
        lr=1e-3,
        pretrained_lr_factor=0.1,
        augment=False,
        views="single",
        reference="batch",
        seed=0,
        device="cpu",
    )
    return replace(base, **changes)  # type: ignore[arg-type]


@dataclass
class Run:
    config: TrainConfig
    result: TrainResult
    reports: list[TrainProgress]


@pytest.fixture(scope="module")
def short_run(lfw_chips: ChipSet, tmp_path_factory: pytest.TempPathFactory) -> Run:
    run_config = config(tmp_path_factory.mktemp("models") / "lfw-finetuned")
    reports: list[TrainProgress] = []
    return Run(run_config, train(run_config, lfw_chips, progress=reports.append), reports)


def test_training_lowers_the_loss(short_run: Run) -> None:
    losses = short_run.result.epoch_losses
    assert not short_run.result.cancelled and len(losses) == 2
    assert losses[0] > 0
    assert losses[-1] < losses[0]


def test_progress_is_reported_per_batch_and_per_epoch(short_run: Run) -> None:
    batch_reports = [r for r in short_run.reports if r.epoch_loss is None]
    epoch_reports = [r for r in short_run.reports if r.epoch_loss is not None]
    assert [(r.epoch, r.batch, r.batches) for r in batch_reports] == [(e, 1, 1) for e in (1, 2)]
    assert [r.epoch_loss for r in epoch_reports] == short_run.result.epoch_losses


def test_the_checkpoint_loads_into_a_fresh_network_that_embeds_identically(
    short_run: Run, lfw_chips: ChipSet
) -> None:
    directory = short_run.config.checkpoint_dir
    loaded = load_trained_network(directory, device=CPU)
    chips = np.stack([lfw_chips.chip(i) for i in range(len(lfw_chips))])
    trained = embed_chips(short_run.result.network, chips, device=CPU)
    assert np.array_equal(embed_chips(loaded, chips, device=CPU), trained)


def test_the_model_card_says_what_the_weights_are(short_run: Run) -> None:
    directory = short_run.config.checkpoint_dir
    card = json.loads((directory / "card.json").read_text())
    assert card["name"] == "lfw-finetuned"
    assert card["weights_hash"] == weights_version(directory / WEIGHTS_FILE)
    assert card["embedding_dim"] == 128 and card["alignment"] == "dlib-150"
    training = card["training"]
    assert training["base"]["backbone"] == "dlib-resnet"
    assert (training["loss"], training["miner"], training["margins"]["margin"]) == (
        "triplet",
        "all",
        1.0,
    )
    assert training["data"]["identities"] == 4 and training["data"]["photos"] == 8
    assert training["epoch_losses"] == short_run.result.epoch_losses


def test_a_finished_run_resumes_to_itself_and_refuses_other_settings(
    short_run: Run, lfw_chips: ChipSet
) -> None:
    directory = short_run.config.checkpoint_dir
    latest = latest_state_path(directory)
    assert latest is not None and latest.name == "epoch_0002.pt"
    resumed = train(short_run.config, lfw_chips)
    assert resumed.epoch_losses == short_run.result.epoch_losses
    with pytest.raises(ValueError, match="margin"):
        train(replace(short_run.config, margin=0.5), lfw_chips)


def test_a_cancelled_run_stops_without_a_checkpoint(lfw_chips: ChipSet, tmp_path: Path) -> None:
    cancel = threading.Event()
    cancel.set()
    result = train(config(tmp_path / "run"), lfw_chips, cancel=cancel)
    assert result.cancelled and result.epoch_losses == []
    assert latest_state_path(tmp_path / "run") is None


def test_starting_over_removes_the_earlier_runs_checkpoints(
    lfw_chips: ChipSet, tmp_path: Path
) -> None:
    directory = tmp_path / "run"
    stale = TrainingState(
        epoch=7, network={}, optimizer={}, config=config(directory).to_json(), epoch_losses=[]
    )
    save_state(directory, stale, keep=2)
    cancel = threading.Event()
    cancel.set()
    train(config(directory), lfw_chips, cancel=cancel, resume=False)
    assert latest_state_path(directory) is None


@pytest.mark.slow
def test_a_resumed_run_ends_where_an_uninterrupted_one_does(
    lfw_chips: ChipSet, tmp_path: Path
) -> None:
    whole = train(config(tmp_path / "whole", epochs=2, augment=True), lfw_chips)
    parts = config(tmp_path / "parts", epochs=2, augment=True)
    # Stopped by its progress callback as soon as the first epoch is checkpointed.
    first = train(parts, lfw_chips, progress=lambda report: report.epoch_loss is None)
    assert first.cancelled and len(first.epoch_losses) == 1
    second = train(parts, lfw_chips)
    assert second.epoch_losses == whole.epoch_losses
    for key, value in whole.network.state_dict().items():
        assert torch.equal(value, second.network.state_dict()[key]), key


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_a_run_on_the_gpu_leaves_weights_that_load_on_the_cpu(
    lfw_chips: ChipSet, tmp_path: Path
) -> None:
    result = train(config(tmp_path / "gpu", epochs=1, device="cuda"), lfw_chips)
    assert next(result.network.parameters()).device.type == "cuda"
    loaded = load_trained_network(tmp_path / "gpu", device=CPU)
    chips = np.stack([lfw_chips.chip(i) for i in range(len(lfw_chips))])
    on_gpu = embed_chips(result.network, chips, device=torch.device("cuda"))
    assert np.allclose(embed_chips(loaded, chips, device=CPU), on_gpu, atol=1e-4)


def test_paired_views_are_a_clean_chip_and_its_cctv_damaged_twin(lfw_chips: ChipSet) -> None:
    dataset = ChipDataset(lfw_chips, augmentation=AugmentationSettings(), paired=True, seed=3)
    views, label = dataset[0]
    assert views.shape == (2, 3, 150, 150) and label == 0
    clean, damaged = views[0], views[1]
    # The clean view is the chip, mirrored or not, under a colour jitter: its layout matches.
    chip = torch.from_numpy(lfw_chips.chip(0)).permute(2, 0, 1).float()
    correlations = [
        float(torch.corrcoef(torch.stack([clean.flatten(), c.flatten()]))[0, 1])
        for c in (chip, chip.flip(-1))
    ]
    assert max(correlations) > 0.95

    # The damaged view has lost fine detail: less high-frequency energy than the clean one.
    def detail(image: torch.Tensor) -> float:
        return float((image[:, :, 1:] - image[:, :, :-1]).abs().mean())

    assert detail(damaged) < detail(clean)


def test_a_paired_run_against_the_pretrained_reference_trains_and_says_so(
    lfw_chips: ChipSet, tmp_path: Path
) -> None:
    run_config = config(tmp_path / "paired", views="paired", reference="pretrained", augment=True)
    result = train(run_config, lfw_chips)
    assert len(result.epoch_losses) == 2 and all(np.isfinite(result.epoch_losses))
    card = json.loads((run_config.checkpoint_dir / "card.json").read_text())
    assert card["training"]["config"]["views"] == "paired"
    assert card["training"]["config"]["reference"] == "pretrained"


def test_a_run_with_composite_faces_trains_and_says_so(lfw_chips: ChipSet, tmp_path: Path) -> None:
    run_config = config(
        tmp_path / "composites",
        views="paired",
        reference="pretrained",
        augment=True,
        distillation=1.0,
        composites=0.5,
    )
    result = train(run_config, lfw_chips)
    assert len(result.epoch_losses) == 2 and all(np.isfinite(result.epoch_losses))
    card = json.loads((run_config.checkpoint_dir / "card.json").read_text())
    assert card["training"]["config"]["composites"] == 0.5


def test_a_contrastive_run_trains_and_its_card_keeps_the_margins(
    lfw_chips: ChipSet, tmp_path: Path
) -> None:
    run_config = config(
        tmp_path / "contrastive", loss="contrastive", miner=None, pos_margin=0.3, neg_margin=0.5
    )
    result = train(run_config, lfw_chips)
    assert len(result.epoch_losses) == 2 and all(np.isfinite(result.epoch_losses))
    assert result.epoch_losses[0] > 0
    training = json.loads((run_config.checkpoint_dir / "card.json").read_text())["training"]
    assert (training["loss"], training["miner"]) == ("contrastive", "pairs")
    assert (training["config"]["pos_margin"], training["config"]["neg_margin"]) == (0.3, 0.5)


def twins_distance_to_dlib(network: torch.nn.Module, dataset: ChipDataset) -> float:
    """Mean 1 − cos between each CCTV twin's embedding and dlib's of its clean view."""
    teacher = pretrained_reference(CPU)
    pairs = torch.stack([dataset[index][0] for index in range(len(dataset))])
    with torch.no_grad():
        network.eval()
        return float(distillation_loss(network(pairs[:, 1]), teacher(pairs[:, 0])))


def test_distillation_pulls_cctv_twins_onto_dlibs_clean_embeddings(
    lfw_chips: ChipSet, tmp_path: Path
) -> None:
    """Three steps on the one batch (every chip, epochs 1–3), with and without the term."""
    distilled = config(
        tmp_path / "distilled",
        views="paired",
        reference="pretrained",
        margin=0.05,
        miner="semihard",
        augment=True,
        distillation=1.0,
        epochs=3,
        pretrained_lr_factor=0.3,
    )
    first_epoch = ChipDataset(lfw_chips, augmentation=AugmentationSettings(), paired=True)
    first_epoch.set_epoch(1)
    plain = replace(distilled, checkpoint_dir=tmp_path / "plain", distillation=0.0)
    before = twins_distance_to_dlib(pretrained_network(), first_epoch)
    after_plain = twins_distance_to_dlib(train(plain, lfw_chips).network, first_epoch)
    after = twins_distance_to_dlib(train(distilled, lfw_chips).network, first_epoch)
    assert after < after_plain and after < before
    card = json.loads((distilled.checkpoint_dir / "card.json").read_text())
    assert card["training"]["config"]["distillation"] == 1.0


def test_distillation_needs_paired_views_and_128_dimensions(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="paired views"):
        config(tmp_path, distillation=1.0)
    with pytest.raises(ValueError, match="paired views"):
        config(tmp_path, views="paired", augment=True, distillation=1.0, head_dim=32)
    with pytest.raises(ValueError, match="at least 0"):
        config(tmp_path, distillation=-1.0)


def test_a_pretrained_reference_needs_128_dimensions_and_pairs_need_augmentation(
    tmp_path: Path,
) -> None:
    with pytest.raises(ValueError, match="128-d"):
        config(tmp_path, reference="pretrained", head_dim=32)
    with pytest.raises(ValueError, match="augment must be on"):
        config(tmp_path, views="paired", augment=False)
