"""Wiring the pages into the app: their routers and the static files they load."""

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from app.web import admin_pages, gallery_pages, reports, upload_pages
from app.web.templating import STATIC_DIR


def install_pages(app: FastAPI) -> None:
    """Add the pages (`/`, `/gallery`, `/enroll`, `/probe`, `/admin`, `/reports`) and `/static`."""
    for module in (gallery_pages, upload_pages, admin_pages, reports):
        app.include_router(module.router)
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
