"""`/admin`: long jobs that change the model under the gallery (reindex), and their state.

Submitting answers 202 at once with the queued job; the app's job worker does
the work, and `GET /admin/jobs/{id}` follows it. Probes keep being answered
from the old model until the job switches to the new one.
"""

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request, status

from app.api.errors import error_responses
from app.gallery.errors import ModelNotReady
from app.jobs.schemas import JobOut, ReindexRequest
from app.jobs.service import JobService

router = APIRouter(prefix="/admin", tags=["admin"])


def get_jobs(request: Request) -> JobService:
    jobs: JobService | None = getattr(request.app.state, "jobs", None)
    if jobs is None:
        raise ModelNotReady("the job worker is still starting; try again shortly")
    return jobs


JobsDep = Annotated[JobService, Depends(get_jobs)]


@router.post("/reindex", status_code=status.HTTP_202_ACCEPTED, responses=error_responses(409, 422))
def reindex(request: ReindexRequest, jobs: JobsDep) -> JobOut:
    """Queue a reindex: every enrolled face re-embedded with `backbone`, then switched to.

    409 `job_conflict` while another reindex or retrain is queued or running.
    """
    return jobs.submit("reindex", request.model_dump())


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
