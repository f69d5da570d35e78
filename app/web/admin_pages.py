"""`/admin`: jobs with live progress, reindex and retrain forms, models and reports.

The page is rendered with the jobs as they stand; its script then polls
`GET /admin/jobs` while one is queued or running, and submits the forms to the
admin API (`POST /admin/reindex`, `POST /admin/retrain`), showing any refusal's
`detail` in the page.
"""

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from app.access.roles import Role
from app.api.auth import allow_page
from app.api.deps import GalleryDep, SettingsDep
from app.jobs.schemas import JobOut
from app.jobs.service import JobService
from app.web.model_cards import list_backbones, list_model_cards, reindex_targets
from app.web.reports import list_reports
from app.web.templating import render

router = APIRouter(include_in_schema=False)
JOBS_SHOWN = 20


@router.get("/admin", response_class=HTMLResponse, dependencies=[allow_page(Role.admin)])
def admin_page(request: Request, gallery: GalleryDep, settings: SettingsDep) -> HTMLResponse:
    stats = gallery.stats()
    active = stats.model_version.backbone
    cards = list_model_cards(settings.models_dir)
    return render(
        request,
        "admin.html",
        {
            "stats": stats,
            "jobs": _recent_jobs(request),
            "backbones": list_backbones(settings, active=active),
            "cards": cards,
            "reindex_targets": reindex_targets(settings.models_dir),
            "reports": list_reports(settings.data_dir),
        },
    )


def _recent_jobs(request: Request) -> list[JobOut] | None:
    """The newest jobs, or None while the job worker is not started."""
    jobs: JobService | None = getattr(request.app.state, "jobs", None)
    return None if jobs is None else jobs.list_jobs(limit=JOBS_SHOWN)
