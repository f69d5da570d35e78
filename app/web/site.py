"""Wiring the pages into the app: their routers, the static files they load, and the
page a browser is shown when its key's role may not open a page."""

from fastapi import FastAPI, Request
from fastapi.responses import Response
from fastapi.staticfiles import StaticFiles

from app.api.auth import Forbidden
from app.api.errors import error_response
from app.web import admin_pages, audit_pages, gallery_pages, login_pages, reports, upload_pages
from app.web.templating import STATIC_DIR, render

PAGE_MODULES = (gallery_pages, upload_pages, admin_pages, audit_pages, reports, login_pages)


def install_pages(app: FastAPI) -> None:
    """Add the pages (`/`, `/gallery`, `/enroll`, `/probe`, `/admin`, `/audit`, `/reports`,
    `/login`, `/logout`) and `/static`. Called after `install_error_handlers`, whose answer
    to `Forbidden` this replaces with one that shows a page to a page's visitor."""
    for module in PAGE_MODULES:
        app.include_router(module.router)
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    app.add_exception_handler(Forbidden, _forbidden)


def is_page_request(request: Request) -> bool:
    """Whether the request was routed to a page (a route of this package), not the API."""
    endpoint = getattr(request.scope.get("route"), "endpoint", None)
    return getattr(endpoint, "__module__", "").startswith(f"{__package__}.")


async def _forbidden(request: Request, error: Exception) -> Response:
    """An HTML 403 for a page; the API's `{detail, code}` for everything else."""
    assert isinstance(error, Forbidden)
    if not is_page_request(request):
        return error_response(str(error), error.code, 403)
    context = {"title": "Not allowed", "detail": str(error), "code": error.code}
    return render(request, "error.html", context, status=403)
