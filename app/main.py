"""The FastAPI application: `create_app(settings)` and the lifespan that opens the gallery."""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from functools import partial

from fastapi import FastAPI
from starlette.concurrency import run_in_threadpool

from app.api import admin, audit_routes, faces, health, keys_routes, search, subjects
from app.api.auth import require_declared_access
from app.api.errors import install_error_handlers
from app.api.gate import KeyGate
from app.api.limits import install_request_limits
from app.api.request_ids import RequestIds
from app.api.security_headers import SecurityHeaders
from app.composition import open_lineup
from app.config import Settings, get_settings
from app.vision.embedder import FaceEmbedder
from app.web.site import install_pages

DESCRIPTION = """
Lineup keeps a gallery of known people and answers probe photos with ranked
candidates, or "no match". **Candidates are investigative leads for a person
to review, never an identification.**
"""


def create_app(
    settings: Settings | None = None, *, embedder: FaceEmbedder | None = None
) -> FastAPI:
    """The app for `settings`; an already loaded `embedder` may be shared (tests, workers)."""
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        lineup = await run_in_threadpool(
            partial(
                open_lineup, settings, embedder=embedder, with_jobs=True, with_housekeeping=True
            )
        )
        app.state.gallery, app.state.jobs = lineup.gallery, lineup.jobs
        app.state.sessions = lineup.sessions
        try:
            yield
        finally:
            app.state.gallery = app.state.jobs = app.state.sessions = None
            await run_in_threadpool(lineup.close)

    app = FastAPI(title="Lineup", description=DESCRIPTION, version="0.1.0", lifespan=lifespan)
    app.state.settings = settings
    app.state.gallery = app.state.jobs = app.state.sessions = None
    install_error_handlers(app)
    app.add_middleware(KeyGate, served=app)
    app.add_middleware(RequestIds)
    # The later a middleware is added, the further out it runs: the request limits bound
    # a body before anything else reads it, and every answer, their refusals included,
    # leaves with the security headers.
    install_request_limits(app, settings)
    app.add_middleware(SecurityHeaders)
    for module in (subjects, faces, search, health, admin, keys_routes, audit_routes):
        app.include_router(module.router)
    install_pages(app)
    require_declared_access(app)
    return app
