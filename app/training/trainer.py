"""The fine-tuning loop: m-per-class batches, a mined metric loss, a checkpoint each epoch.

`train` is the one entry point (the CLI and background jobs call it). It is
reproducible for a given seed: batches and augmentations are drawn per epoch
from (seed, epoch) and the head is initialised from the seed, so a run that
was stopped and resumed follows the same path as one that was not (on a GPU,
up to the last bits of non-deterministic kernels).

Progress is reported through a callback after each batch and after each
epoch's checkpoint; the callback returning False, or `cancel` being set,
stops the run after the current batch. The unfinished epoch is discarded,
so the newest checkpoint always holds whole epochs.
"""

import logging
import threading
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from torch.utils.data import DataLoader

from app.training.checkpoints import (
    TrainingState,
    latest_state_path,
    load_state,
    save_state,
    save_weights,
)
from app.training.chips import ChipSet
from app.training.dataset import ChipDataset
from app.training.degrade import AugmentationSettings
from app.training.losses import Objective, build_objective, distillation_loss
from app.training.model_card import record_training
from app.training.network import (
    EmbeddingNetwork,
    parameter_groups,
    pretrained_network,
    pretrained_reference,
)
from app.training.sampling import EpochSampler
from app.training.train_config import TrainConfig
from app.vision.alignment_template import DLIB_150
from app.vision.backbones.dlib_backbone import default_weights_path
from app.vision.backbones.weights import weights_version
from app.vision.device import resolve_device

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TrainProgress:
    """Where a run is: after batch `batch` of `batches` in epoch `epoch` (1-based) of `epochs`.

    `epoch_loss` is set only in the report made once the epoch is checkpointed (its
    `batch_loss` is then the epoch's mean too).
    """

    epoch: int
    epochs: int
    batch: int
    batches: int
    batch_loss: float
    epoch_loss: float | None = None


ProgressCallback = Callable[[TrainProgress], bool | None]


@dataclass
class TrainResult:
    """The losses of all completed epochs (resumed ones included) and how the run ended.

    `network` is the network as training left it: after a cancellation it holds
    part of an epoch that no checkpoint has.
    """

    network: EmbeddingNetwork
    epoch_losses: list[float]
    cancelled: bool
    checkpoint_dir: Path


@dataclass
class _Run:
    """The live pieces of a run, built once."""

    config: TrainConfig
    device: torch.device
    network: EmbeddingNetwork
    optimizer: torch.optim.Optimizer
    objective: Objective
    loader: DataLoader[tuple[torch.Tensor, int]]
    sampler: EpochSampler
    dataset: ChipDataset
    epoch_losses: list[float]
    teacher: torch.nn.Module | None
    """dlib's frozen network, when the config mines against it or distils from it."""


def train(
    config: TrainConfig,
    train_chips: ChipSet,
    *,
    progress: ProgressCallback | None = None,
    cancel: threading.Event | None = None,
    resume: bool = True,
) -> TrainResult:
    """Fine-tune dlib's ResNet on `train_chips` as `config` says.

    With `resume` the run continues from the newest checkpoint in
    `config.checkpoint_dir`, if any; without it, it starts over and removes
    that directory's epoch checkpoints first.
    """
    run = _start(config, train_chips, resume=resume)
    start = len(run.epoch_losses)
    for epoch in range(start + 1, config.epochs + 1):
        mean_loss = _run_epoch(run, epoch=epoch, progress=progress, cancel=cancel)
        if mean_loss is None:
            log.info("training cancelled during epoch %d; kept %d epochs", epoch, epoch - 1)
            return TrainResult(run.network, run.epoch_losses, True, config.checkpoint_dir)
        run.epoch_losses.append(mean_loss)
        _checkpoint(run, epoch=epoch, train_chips=train_chips)
        log.info("epoch %d/%d: mean loss %.4f", epoch, config.epochs, mean_loss)
        batches = len(run.loader)
        report = TrainProgress(epoch, config.epochs, batches, batches, mean_loss, mean_loss)
        stop = progress is not None and progress(report) is False
        if (stop or (cancel is not None and cancel.is_set())) and epoch < config.epochs:
            return TrainResult(run.network, run.epoch_losses, True, config.checkpoint_dir)
    return TrainResult(run.network, run.epoch_losses, False, config.checkpoint_dir)


def _start(config: TrainConfig, train_chips: ChipSet, *, resume: bool) -> _Run:
    device = resolve_device(config.device)
    network = pretrained_network(
        head_dim=config.head_dim, freeze_depth=config.freeze_depth, seed=config.seed
    ).to(device)
    optimizer = _optimizer(config, network)
    epoch_losses: list[float] = []
    if not resume:
        _discard_states(config.checkpoint_dir)
    latest = latest_state_path(config.checkpoint_dir)
    if latest is not None:
        epoch_losses = _restore(config, latest, network=network, optimizer=optimizer, device=device)
    loader, sampler, dataset = _loader(config, train_chips, device=device)
    objective = build_objective(loss=config.loss, miner=config.miner, margins=config.margins)
    wants_teacher = config.reference == "pretrained" or config.distillation > 0
    teacher = pretrained_reference(device) if wants_teacher else None
    return _Run(
        config,
        device,
        network,
        optimizer,
        objective,
        loader,
        sampler,
        dataset,
        epoch_losses,
        teacher,
    )


def _loader(
    config: TrainConfig, train_chips: ChipSet, *, device: torch.device
) -> tuple[DataLoader[tuple[torch.Tensor, int]], EpochSampler, ChipDataset]:
    """Batches of `m_per_class` chips of `classes_per_batch` identities, augmented if asked."""
    augmentation = AugmentationSettings() if config.augment else None
    dataset = ChipDataset(
        train_chips,
        augmentation=augmentation,
        paired=config.views == "paired",
        composites=config.composites,
        seed=config.seed,
    )
    batches = config.batches_per_epoch or max(1, len(dataset) // config.batch_size)
    sampler = EpochSampler(
        dataset.labels,
        m=config.m_per_class,
        classes_per_batch=config.classes_per_batch,
        batches=batches,
        seed=config.seed,
    )
    loader = DataLoader(
        dataset,
        batch_size=config.batch_size,
        sampler=sampler,
        drop_last=True,
        num_workers=config.workers,
        pin_memory=device.type == "cuda",
    )
    return loader, sampler, dataset


def _discard_states(directory: Path) -> None:
    """Starting over: an earlier run's epoch checkpoints would otherwise be resumed later."""
    while (path := latest_state_path(directory)) is not None:
        log.warning("starting over: removing %s", path)
        path.unlink()


def _optimizer(config: TrainConfig, network: EmbeddingNetwork) -> torch.optim.Optimizer:
    groups = parameter_groups(
        network, lr=config.lr, pretrained_lr_factor=config.pretrained_lr_factor
    )
    if config.optimizer == "sgd":
        return torch.optim.SGD(groups, momentum=config.momentum, weight_decay=config.weight_decay)
    return torch.optim.AdamW(groups, weight_decay=config.weight_decay)


def _restore(
    config: TrainConfig,
    path: Path,
    *,
    network: EmbeddingNetwork,
    optimizer: torch.optim.Optimizer,
    device: torch.device,
) -> list[float]:
    """Load a checkpoint into `network` and `optimizer`; its epoch losses, one per epoch done."""
    state = load_state(path, device=device)
    conflicts = config.conflicts_with(TrainConfig.from_json(state.config))
    if conflicts:
        raise ValueError(
            f"{path} was trained with other settings ({', '.join(conflicts)}); "
            "use another checkpoint directory or resume=False to start over"
        )
    network.load_state_dict(state.network)
    optimizer.load_state_dict(state.optimizer)
    log.info("resuming from %s after epoch %d", path, state.epoch)
    return list(state.epoch_losses)


def _run_epoch(
    run: _Run, *, epoch: int, progress: ProgressCallback | None, cancel: threading.Event | None
) -> float | None:
    """Train one epoch; its mean batch loss, or None when cancelled part-way."""
    run.sampler.set_epoch(epoch)
    run.dataset.set_epoch(epoch)
    run.network.train()
    losses: list[float] = []
    for batch, (pixels, labels) in enumerate(run.loader, start=1):
        if cancel is not None and cancel.is_set():
            return None
        device = run.device
        loss = _batch_loss(run, pixels.to(device, non_blocking=True), labels.to(device))
        run.optimizer.zero_grad(set_to_none=True)
        torch.autograd.backward(loss)
        run.optimizer.step()
        losses.append(float(loss.detach()))
        report = TrainProgress(epoch, run.config.epochs, batch, len(run.loader), losses[-1])
        if progress is not None and progress(report) is False:
            return None
    return sum(losses) / len(losses)


def _batch_loss(run: _Run, pixels: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """The objective on one batch: B×3×S×S single views, or B×2×3×S×S paired ones.

    Every view is an anchor. With a pretrained reference, its positives and
    negatives are the teacher's embeddings of the batch's clean views; with
    distillation, those embeddings are also where each photo's views must land.
    """
    views = pixels.shape[1] if pixels.ndim == 5 else 1
    embeddings = run.network(pixels.flatten(0, 1) if views > 1 else pixels)
    anchor_labels = labels.repeat_interleave(views)
    if run.teacher is None:
        return run.objective(embeddings, anchor_labels)
    with torch.no_grad():
        clean = run.teacher(pixels[:, 0] if views > 1 else pixels)
    if run.config.reference == "pretrained":
        loss = run.objective(embeddings, anchor_labels, reference=clean, reference_labels=labels)
    else:
        loss = run.objective(embeddings, anchor_labels)
    if run.config.distillation > 0:
        targets = clean.repeat_interleave(views, dim=0)
        loss = loss + run.config.distillation * distillation_loss(embeddings, targets)
    return loss


def _checkpoint(run: _Run, *, epoch: int, train_chips: ChipSet) -> None:
    """This epoch's resumable state, the weights alone, and the model card."""
    directory = run.config.checkpoint_dir
    state = TrainingState(
        epoch=epoch,
        network=run.network.state_dict(),
        optimizer=run.optimizer.state_dict(),
        config=run.config.to_json(),
        epoch_losses=list(run.epoch_losses),
    )
    save_state(directory, state, keep=run.config.keep_checkpoints)
    weights = save_weights(directory, run.network)
    record_training(
        directory.parent,
        directory.name,
        weights_hash=weights_version(weights),
        embedding_dim=run.network.embedding_dim,
        alignment=DLIB_150.name,
        training=_training_section(run, train_chips),
    )


def _training_section(run: _Run, train_chips: ChipSet) -> dict[str, object]:
    """What the card says about how these weights were made."""
    return {
        "base": {"backbone": "dlib-resnet", "weights_hash": _base_weights_hash()},
        "data": {
            "root": str(train_chips.root),
            "identities": len(train_chips.identities()),
            "photos": len(train_chips),
            "skipped": dict(train_chips.skipped),
        },
        "loss": run.config.loss,
        "miner": run.config.miner_name,
        "margins": asdict(run.config.margins),
        "epochs_completed": len(run.epoch_losses),
        "epoch_losses": list(run.epoch_losses),
        "config": run.config.to_json(),
    }


def _base_weights_hash() -> str:
    return weights_version(default_weights_path())
