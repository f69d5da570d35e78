"""Fine-tuning runs that leave a usable model folder behind.

`train_model` is `lineup train` on a labelled photo tree; `train_and_calibrate`
is the part it shares with the retrain job, which starts from chips.

The run holds out a few of the training identities before it starts. The
network never sees them, so they can calibrate the new model's match
threshold honestly: a threshold measured on people the model was trained to
separate would be too lenient for strangers. Evaluation identities (celeba's
`val` part) are not touched here at all.

The folder `models/<name>/` ends up with `weights.safetensors`, the epoch
checkpoints and `card.json` (base weights, data, loss, miner, margins, losses
per epoch, and the calibrated threshold), and `create_backbone(name)` loads it.
"""

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from app.training.calibration import calibrate
from app.training.chips import ChipCache, ChipSet
from app.training.face_tree import labelled_photos
from app.training.model_card import record_calibration, record_training_data
from app.training.train_config import TrainConfig
from app.training.trainer import ProgressCallback, TrainResult, train
from app.vision.backbones.registry import create_backbone
from app.vision.detection import FaceDetector
from app.vision.embedder import embed_in_batches

log = logging.getLogger(__name__)

CALIBRATION_FMR = 1e-3
CALIBRATION_PHOTOS = 8  # per identity, as for dlib-resnet's own threshold
ChipProgress = Callable[[int, int], None]


def hold_out(identities: list[str], *, count: int) -> tuple[list[str], list[str]]:
    """(training, held out): every k-th identity of the sorted list is held out, `count` in all."""
    ordered = sorted(identities)
    if count <= 0:
        return ordered, []
    if count >= len(ordered) - 1:
        raise ValueError(f"cannot hold out {count} of {len(ordered)} identities and still train")
    step = len(ordered) / count
    held = {ordered[int(i * step)] for i in range(count)}
    return [name for name in ordered if name not in held], sorted(held)


@dataclass(frozen=True)
class TrainingRun:
    """What a fine-tuning run did: the trainer's result, the calibration, and the time it took."""

    result: TrainResult
    calibration: dict[str, Any] | None
    seconds: float


def train_model(
    config: TrainConfig,
    *,
    root: Path,
    identities: list[str],
    detector: FaceDetector,
    cache_dir: Path,
    calibration_identities: int = 40,
    data_description: str | None = None,
    chip_progress: ChipProgress | None = None,
    progress: ProgressCallback | None = None,
    cancel: threading.Event | None = None,
    resume: bool = True,
) -> TrainingRun:
    """Cache chips for a photo tree, then `train_and_calibrate` with some identities held out.

    The held-out identities contribute their first `CALIBRATION_PHOTOS`
    photos each, as for dlib-resnet's own threshold.
    """
    trained_on, held = hold_out(identities, count=calibration_identities)
    cache = ChipCache(root=root, cache_dir=cache_dir, detector=detector)
    chips = cache.build(labelled_photos(root, trained_on), progress=chip_progress)
    held_out = cache.build(labelled_photos(root, held, per_identity=CALIBRATION_PHOTOS))
    return train_and_calibrate(
        config,
        chips,
        held_out,
        data_description=data_description or root.name,
        progress=progress,
        cancel=cancel,
        resume=resume,
    )


def train_and_calibrate(
    config: TrainConfig,
    chips: ChipSet,
    held_out: ChipSet,
    *,
    data_description: str,
    progress: ProgressCallback | None = None,
    cancel: threading.Event | None = None,
    resume: bool = True,
    on_calibration: Callable[[], None] | None = None,
) -> TrainingRun:
    """Fine-tune on `chips`, record the data in the card, then calibrate on `held_out`.

    `held_out` must share no identity with `chips`: the network never sees
    those people, so the threshold measured on them is one for strangers.
    Nothing is calibrated after a cancellation or without held-out chips.
    """
    log.info("training on %d identities, %d photos", len(chips.identities()), len(chips))
    started = time.perf_counter()
    result = train(config, chips, progress=progress, cancel=cancel, resume=resume)
    seconds = time.perf_counter() - started
    if result.cancelled:
        return TrainingRun(result, None, seconds)
    record_training_data(
        config.checkpoint_dir.parent,
        config.checkpoint_dir.name,
        description=data_description,
        held_out_for_calibration=held_out.identities(),
        training_seconds=round(seconds),
    )
    if not held_out.records:
        return TrainingRun(result, None, seconds)
    if on_calibration is not None:
        on_calibration()
    calibration = calibrate_model(config.checkpoint_dir, held_out, device=_device_of(result))
    return TrainingRun(result, calibration, seconds)


def calibration_count(identities: int) -> int:
    """How many of `identities` a retrain holds out to calibrate on: a fifth, at most 40,
    and none below 10 (too few to train on and to calibrate with at once)."""
    return 0 if identities < 10 else min(40, identities // 5)


def _device_of(result: TrainResult) -> torch.device:
    return next(result.network.parameters()).device


def calibrate_model(
    model_dir: Path, chips: ChipSet, *, device: torch.device, fmr: float = CALIBRATION_FMR
) -> dict[str, Any]:
    """Measure the threshold of the model in `model_dir` on `chips` and record it in its card."""
    backbone = create_backbone(model_dir.name, device=device, models_dir=model_dir.parent)
    embeddings = embed_in_batches(backbone, chips.stack())
    summary = calibrate(embeddings, chips.labels(), fmr=fmr).summary(
        fmr=fmr,
        identities=[record.identity for record in chips.records],
        skipped=chips.skipped,
        data=f"{len(chips.identities())} identities held out of training, {len(chips)} photos",
    )
    record_calibration(model_dir.parent, backbone, summary)
    return summary
