"""Retraining: fine-tune a new model on a photo tree or on the gallery, as a background job.

`check_retrain` refuses, when the job is submitted, what could only fail later:
a name already taken, a folder or split file outside the training root or not
there (see `app.jobs.training_sets`), too few identities for the batches asked
for; it answers the request as it will run, its paths resolved. `run_retrain`
checks again, builds the chips, trains into `<models_dir>/<name>/` and reports
the fraction of all batches done. The new model changes nothing by itself: a
reindex to it (`{"backbone": name}`) is what puts it in service. A retrain that
fails or is cancelled removes its folder, so the name can be used again.
"""

import logging
import shutil
from pathlib import Path
from typing import Any

from app.gallery.errors import OperationCancelled, RetrainRefused
from app.gallery.reindex import Cancelled, Progress
from app.jobs.context import JobContext
from app.jobs.schemas import FolderDataset, RetrainRequest
from app.jobs.training_data import (
    folder_chips,
    folder_identities,
    gallery_chips,
    gallery_identities,
)
from app.jobs.training_sets import confine_dataset
from app.training.chips import ChipSet
from app.training.train_run import calibration_count, hold_out, train_and_calibrate
from app.training.trainer import TrainProgress
from app.vision.backbones.finetuned import WEIGHTS_FILE
from app.vision.backbones.weights import weights_version

log = logging.getLogger(__name__)

MIN_IDENTITIES = 2


def check_retrain(context: JobContext, request: RetrainRequest) -> RetrainRequest:
    """The request as it will run, a folder dataset's paths resolved inside the training
    root; `RetrainRefused` if it cannot run."""
    directory = context.settings.models_dir / request.name
    if directory.exists():
        raise RetrainRefused(
            f"{directory} already exists; choose another name, or delete that folder first"
        )
    dataset = request.dataset
    if isinstance(dataset, FolderDataset):
        dataset = confine_dataset(dataset, root=context.settings.resolved_training_root)
        request = request.model_copy(update={"dataset": dataset})
        count = _folder_identity_count(dataset)
    else:
        count = gallery_identities(context.gallery, dataset)
    where = _describe(request)
    if count < MIN_IDENTITIES:
        raise RetrainRefused(
            f"{where} has {count} identities; training needs at least {MIN_IDENTITIES}"
        )
    trainable = count - calibration_count(count)
    if request.classes_per_batch is not None and request.classes_per_batch > trainable:
        raise RetrainRefused(
            f"classes_per_batch={request.classes_per_batch}, but {where} has only "
            f"{trainable} identities to train on ({count - trainable} of {count} are held "
            "out to calibrate the threshold)"
        )
    return request


def _folder_identity_count(dataset: FolderDataset) -> int:
    """How many identities of a confined folder dataset would be trained on."""
    try:
        return len(folder_identities(dataset))
    except OSError as error:  # an unreadable folder; the split's own refusals pass through
        raise RetrainRefused(
            f"dataset folder {dataset.path} cannot be read ({error.strerror})"
        ) from error


def run_retrain(
    context: JobContext, parameters: dict[str, Any], progress: Progress, cancelled: Cancelled
) -> dict[str, Any]:
    """Train the requested model into its new folder; what it made, as JSON."""
    # Checked again: the tree may have changed, or a link in it moved, since it was queued.
    request = check_retrain(context, RetrainRequest.model_validate(parameters))
    directory = context.settings.models_dir / request.name
    snapshot = context.settings.data_dir / "training" / f"{request.name}-gallery-chips"
    try:
        chips = _chips(context, request, snapshot=snapshot, progress=progress, cancelled=cancelled)
        result = _train(context, request, chips, progress=progress, cancelled=cancelled)
    except BaseException:
        shutil.rmtree(directory, ignore_errors=True)
        raise
    finally:
        shutil.rmtree(snapshot, ignore_errors=True)
    return result


def _chips(
    context: JobContext,
    request: RetrainRequest,
    *,
    snapshot: Path,
    progress: Progress,
    cancelled: Cancelled,
) -> ChipSet:
    dataset = request.dataset
    progress(0.0, "preparing chips")
    if isinstance(dataset, FolderDataset):
        return folder_chips(
            context.gallery,
            dataset,
            cache_root=context.settings.data_dir / "training" / "chip-cache",
            report=lambda message: progress(0.0, message),
            cancelled=cancelled,
        )
    return gallery_chips(context.gallery, dataset, snapshot_dir=snapshot, cancelled=cancelled)


def _train(
    context: JobContext,
    request: RetrainRequest,
    chips: ChipSet,
    *,
    progress: Progress,
    cancelled: Cancelled,
) -> dict[str, Any]:
    """`train_and_calibrate` with `calibration_count` identities held out, reporting after
    each batch and asking whether to stop."""
    directory = context.settings.models_dir / request.name
    trained_on, held = hold_out(
        chips.identities(), count=calibration_count(len(chips.identities()))
    )
    chips, held_out = chips.subset(trained_on), chips.subset(held)
    config = request.train_config(
        checkpoint_dir=directory,
        identities=len(chips.identities()),
        device=context.settings.device,
    )

    def on_batch(step: TrainProgress) -> bool:
        done = (step.epoch - 1) * step.batches + step.batch
        progress(
            done / (step.epochs * step.batches),
            f"epoch {step.epoch} of {step.epochs}, batch {step.batch} of {step.batches}, "
            f"loss {step.batch_loss:.4f}",
        )
        return not cancelled()

    run = train_and_calibrate(
        config,
        chips,
        held_out,
        data_description=_describe(request),
        progress=on_batch,
        resume=False,
        on_calibration=lambda: progress(
            1.0, f"calibrating on {len(held_out.identities())} held-out identities"
        ),
    )
    if run.result.cancelled:
        raise OperationCancelled("the retrain was cancelled")
    return {
        "model": request.name,
        "weights_hash": weights_version(directory / WEIGHTS_FILE),
        "embedding_dim": run.result.network.embedding_dim,
        "epochs": len(run.result.epoch_losses),
        "epoch_losses": run.result.epoch_losses,
        "identities": len(chips.identities()),
        "photos": len(chips),
        "skipped": dict(chips.skipped),
        "card": str(directory / "card.json"),
        "calibration": run.calibration,
    }


def _describe(request: RetrainRequest) -> str:
    """What the request trains on, for refusals and for the model's card."""
    dataset = request.dataset
    if isinstance(dataset, FolderDataset):
        part = f" ({dataset.part} of {dataset.split})" if dataset.split else ""
        return f"{dataset.path}{part}"
    return f"the gallery (subjects with at least {dataset.min_photos} faces)"
