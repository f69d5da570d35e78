"""What each kind of job does: an explicit table from kind to runner function.

A runner gets the app's `JobContext`, the job's parameters, a `progress`
callback and a `cancelled` question, and returns the job's result as JSON.
`retrain` (in `app.jobs.retrain`) fine-tunes a new model; `reindex` puts a
model, built-in or fine-tuned, in service, and `check_reindex` refuses at once
a reindex that could only fail.
"""

from collections.abc import Mapping
from types import MappingProxyType
from typing import Any, Final

from app.gallery.errors import JobConflict
from app.gallery.probe import version_view
from app.gallery.reindex import Cancelled, Progress, ReindexRefused
from app.jobs.context import JobContext as JobContext
from app.jobs.context import JobRunner as JobRunner
from app.jobs.retrain import run_retrain
from app.jobs.schemas import ReindexRequest
from app.vision.device import resolve_device


class AlreadyActive(ReindexRefused, JobConflict):
    """A reindex to the model already in service: it would change nothing (`reindex_refused`).

    A conflict with the gallery's state, so answered 409: the `JobConflict` base is
    what maps it there in `app.api.errors`, which has no entry for `ReindexRefused`.
    """


def check_reindex(request: ReindexRequest, *, active_backbone: str) -> None:
    """`AlreadyActive` if `request` asks for the backbone the gallery searches with now.

    The name is compared, not the weights: a model's weights cannot change under
    its name while it is active (the gallery refuses to start on changed weights).
    """
    if request.backbone == active_backbone:
        raise AlreadyActive(
            f"{request.backbone} is already the active model; a reindex to it would change "
            "nothing (name another backbone, or retrain a new model first)"
        )


def run_reindex(
    context: JobContext, parameters: dict[str, Any], progress: Progress, cancelled: Cancelled
) -> dict[str, Any]:
    """Re-embed the gallery with the requested backbone and switch to it."""
    request = ReindexRequest.model_validate(parameters)
    settings = context.settings
    outcome = context.gallery.reindex(
        request.backbone,
        device=resolve_device(settings.device),
        models_dir=settings.models_dir,
        weights=settings.backbone_weights(request.backbone),
        progress=progress,
        cancelled=cancelled,
    )
    return {
        "model_version": version_view(outcome.version).model_dump(),
        "faces": outcome.faces,
        "caught_up": outcome.caught_up,
        "realigned": outcome.realigned,
    }


RUNNERS: Final[Mapping[str, JobRunner]] = MappingProxyType(
    {"reindex": run_reindex, "retrain": run_retrain}
)
