"""`/admin`: long jobs that make a model (retrain) or change the model under the gallery
(reindex), and their state.

Submitting answers 202 at once with the queued job; the app's job worker does
the work, and `GET /admin/jobs/{id}` follows it. What can be known to fail is
refused at once with 422 instead (an unknown model, a missing dataset folder).
Probes keep being answered from the old model until a reindex switches.
"""

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request, status

from app.api.deps import GalleryDep, SettingsDep
from app.api.errors import error_responses
from app.gallery.errors import ModelNotReady
from app.jobs.context import JobContext
from app.jobs.retrain import check_retrain
from app.jobs.schemas import JobOut, ReindexRequest, RetrainRequest
from app.jobs.service import JobService
from app.vision.backbones.registry import require_known_backbone

router = APIRouter(prefix="/admin", tags=["admin"])


def get_jobs(request: Request) -> JobService:
    jobs: JobService | None = getattr(request.app.state, "jobs", None)
    if jobs is None:
        raise ModelNotReady("the job worker is still starting; try again shortly")
    return jobs


JobsDep = Annotated[JobService, Depends(get_jobs)]


@router.post("/reindex", status_code=status.HTTP_202_ACCEPTED, responses=error_responses(409, 422))
def reindex(request: ReindexRequest, jobs: JobsDep, settings: SettingsDep) -> JobOut:
    """Queue a reindex: every enrolled face re-embedded with `backbone`, then switched to.

    `backbone` is a built-in one or a fine-tuned model under the models dir
    (422 `unknown_backbone` otherwise). 409 `job_conflict` while another
    reindex or retrain is queued or running.
    """
    require_known_backbone(request.backbone, models_dir=settings.models_dir)
    return jobs.submit("reindex", request.model_dump())


@router.post("/retrain", status_code=status.HTTP_202_ACCEPTED, responses=error_responses(409, 422))
def retrain(
    request: RetrainRequest, jobs: JobsDep, gallery: GalleryDep, settings: SettingsDep
) -> JobOut:
    """Queue a retrain: fine-tune dlib's ResNet into the new model `name`.

    The model is written to `<models dir>/<name>/` (weights, checkpoints,
    model card); reindex to it to put it in service. 422 `retrain_refused`
    when the name is taken, the dataset folder does not exist or it has
    fewer than 2 identities; 409 `job_conflict` while another job runs.
    """
    check_retrain(JobContext(gallery=gallery, settings=settings), request)
    return jobs.submit("retrain", request.model_dump(mode="json"))


@router.get("/jobs")
def list_jobs(jobs: JobsDep, limit: Annotated[int, Query(ge=1, le=200)] = 50) -> list[JobOut]:
    """The newest jobs first."""
    return jobs.list_jobs(limit=limit)


@router.get("/jobs/{job_id}", responses=error_responses(404))
def get_job(job_id: int, jobs: JobsDep) -> JobOut:
    return jobs.get(job_id)


@router.post(
    "/jobs/{job_id}/cancel",
    status_code=status.HTTP_202_ACCEPTED,
    responses=error_responses(404, 409),
)
def cancel_job(job_id: int, jobs: JobsDep) -> JobOut:
    """Cancel a queued job at once, or ask a running one to stop at its next step.

    Nothing a cancelled job did is switched in. 409 `job_finished` if it has already ended.
    """
    return jobs.cancel(job_id)
