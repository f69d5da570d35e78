"""`/enroll` and `/probe`: pages whose work is done by their scripts through the JSON API.

The enroll script creates the subject (`POST /subjects`) and sends every
dropped photo in one `POST /subjects/{id}/photos`; the probe script sends the
photo once to `POST /probe` and re-ranks the kept answer in the browser when
the threshold moves. These routes only render the forms with their defaults.
"""

from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse

from app.access.roles import Role
from app.api.auth import allow_page
from app.api.deps import GalleryDep, SettingsDep
from app.api.params import ID_BOUND, Canonical
from app.gallery.errors import SubjectNotFound
from app.web.templating import render

router = APIRouter(include_in_schema=False)


@router.get("/enroll", response_class=HTMLResponse, dependencies=[allow_page(Role.enroller)])
def enroll_page(
    request: Request,
    gallery: GalleryDep,
    subject: Annotated[
        int | None, Query(ge=1, lt=ID_BOUND, description="Add photos to this subject."), Canonical
    ] = None,
) -> HTMLResponse:
    """A new subject with photos, or (`?subject=ID`) more photos for an existing one."""
    existing = None
    if subject is not None:
        try:
            existing = gallery.get_subject(subject)
        except SubjectNotFound as error:
            return render(request, "not_found.html", {"message": str(error)}, status=404)
    return render(request, "enroll.html", {"subject": existing})


@router.get("/probe", response_class=HTMLResponse, dependencies=[allow_page(Role.investigator)])
def probe_page(request: Request, gallery: GalleryDep, settings: SettingsDep) -> HTMLResponse:
    """The probe form, its threshold control set to the threshold probes use by default."""
    stats = gallery.stats()
    return render(
        request,
        "probe.html",
        {
            "threshold": gallery.default_threshold(),
            "default_k": settings.default_k,
            "backbone": stats.model_version.backbone,
            "face_count": stats.index_size,
        },
    )
