"""`/health` and `/stats`: is the service up, is it ready, and what does it hold?"""

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from app.access.roles import Role
from app.api.auth import allow, public
from app.api.deps import GalleryDep
from app.api.errors import error_responses, router_errors
from app.schemas import Stats

router = APIRouter(tags=["health"], responses=router_errors(keyed=False))


@router.get("/health/live", dependencies=[public()])
def live() -> dict[str, str]:
    """The process answers."""
    return {"status": "live"}


@router.get("/health/ready", responses=error_responses(503), dependencies=[public()])
def ready(request: Request) -> JSONResponse:
    """Ready once the model and the index are loaded (503 until then)."""
    if getattr(request.app.state, "gallery", None) is None:
        return JSONResponse(
            {"detail": "the model and index are loading", "code": "model_not_ready"},
            status_code=503,
        )
    return JSONResponse({"status": "ready"})


@router.get(
    "/stats", responses=error_responses(401, 403, 429, 503), dependencies=[allow(Role.viewer)]
)
def stats(gallery: GalleryDep) -> Stats:
    """Counts, the active model version and the index size."""
    return gallery.stats()
