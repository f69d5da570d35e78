"""`/admin`: long jobs that make a model (retrain) or change the model under the gallery
(reindex), and their state.

Submitting answers 202 at once with the queued job; the app's job worker does
the work, and `GET /admin/jobs/{id}` follows it. What can be known to fail is
refused at once instead: 422 for a request that cannot be run (an unknown
model, a dataset outside the training root or missing), 409 for one that
conflicts with the state (another job, a reindex to the model already active).
Probes keep being answered from the old model until a reindex switches.
"""

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request, status

from app.access.roles import Role
from app.api.auth import CallerDep, allow
from app.api.deps import GalleryDep, SettingsDep
from app.api.errors import error_responses, router_errors
from app.api.params import JobId
from app.gallery.errors import ModelNotReady
from app.gallery.service import Gallery
from app.jobs.context import JobContext
from app.jobs.retrain import check_retrain
from app.jobs.runners import check_reindex
from app.jobs.schemas import JobOut, ReindexRequest, RetrainRequest
from app.jobs.service import JobService
from app.vision.backbones.registry import require_known_backbone

router = APIRouter(
    prefix="/admin",
    tags=["admin"],
    responses=router_errors(503),
    dependencies=[allow(Role.admin)],
)


def get_jobs(request: Request) -> JobService:
    jobs: JobService | None = getattr(request.app.state, "jobs", None)
    if jobs is None:
        raise ModelNotReady("the job worker is still starting; try again shortly")
    return jobs


JobsDep = Annotated[JobService, Depends(get_jobs)]


@router.post("/reindex", status_code=status.HTTP_202_ACCEPTED, responses=error_responses(409, 422))
def reindex(
    request: ReindexRequest,
    jobs: JobsDep,
    gallery: GalleryDep,
    settings: SettingsDep,
    caller: CallerDep,
) -> JobOut:
    """Queue a reindex: every enrolled face re-embedded with `backbone`, then switched to.

    `backbone` is a built-in one or a fine-tuned model under the models dir
    (422 `unknown_backbone` otherwise). 409 `reindex_refused` when it is the
    model the gallery already searches with: nothing is queued. 409
    `job_conflict` while another reindex or retrain is queued or running.
    """
    require_known_backbone(request.backbone, models_dir=settings.models_dir)
    check_reindex(request, active_backbone=_active_backbone(gallery))
    return jobs.submit("reindex", request.model_dump(), by=caller.actor)


def _active_backbone(gallery: Gallery) -> str:
    """The backbone of the model version the gallery searches with now."""
    return gallery.active_model().backbone


@router.post("/retrain", status_code=status.HTTP_202_ACCEPTED, responses=error_responses(409, 422))
def retrain(
    request: RetrainRequest,
    jobs: JobsDep,
    gallery: GalleryDep,
    settings: SettingsDep,
    caller: CallerDep,
) -> JobOut:
    """Queue a retrain: fine-tune dlib's ResNet into the new model `name`.

    The model is written to `<models dir>/<name>/` (weights, checkpoints,
    model card); reindex to it to put it in service. A folder dataset's
    `path` and `split` must lie inside the training root (LINEUP_TRAINING_ROOT),
    relative to it or absolute, symlinks followed; the job records them
    resolved. 422 `retrain_refused` when the name is taken, a path is outside
    the root or does not exist, the split file is not one, or the data has
    fewer than 2 identities; 409 `job_conflict` while another job runs.
    """
    checked = check_retrain(JobContext(gallery=gallery, settings=settings), request)
    return jobs.submit("retrain", checked.model_dump(mode="json"), by=caller.actor)


@router.get("/jobs")
def list_jobs(jobs: JobsDep, limit: Annotated[int, Query(ge=1, le=200)] = 50) -> list[JobOut]:
    """The newest jobs first."""
    return jobs.list_jobs(limit=limit)


@router.get("/jobs/{job_id}", responses=error_responses(404))
def get_job(job_id: JobId, jobs: JobsDep) -> JobOut:
    return jobs.get(job_id)


@router.post(
    "/jobs/{job_id}/cancel",
    status_code=status.HTTP_202_ACCEPTED,
    responses=error_responses(404, 409),
)
def cancel_job(job_id: JobId, jobs: JobsDep, caller: CallerDep) -> JobOut:
    """Cancel a queued job at once, or ask a running one to stop at its next step.

    Nothing a cancelled job did is switched in. 409 `job_finished` if it has already ended.
    """
    return jobs.cancel(job_id, by=caller.actor)
