"""The Jinja2 environment the pages render with, and a helper that renders one page."""

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates

from app.access.roles import Role, may
from app.api.auth import Caller

WEB_DIR = Path(__file__).resolve().parent
STATIC_DIR = WEB_DIR / "static"

# Autoescaping is on (Starlette's default for Jinja2Templates): names and notes
# typed by users reach the pages as text, never as markup.
TEMPLATES = Jinja2Templates(directory=WEB_DIR / "templates")

LEADS_STATEMENT = (
    "Candidates are investigative leads for a person to review, never an identification."
)
NAV = (
    ("/gallery", "Gallery", Role.viewer),
    ("/enroll", "Enroll", Role.enroller),
    ("/probe", "Probe", Role.investigator),
    ("/admin", "Admin", Role.admin),
)


@dataclass(frozen=True)
class PageCaller:
    """Who a page is rendered for, and which of its controls they may use.

    The server refuses what a role may not do whatever a page shows; hiding the
    controls only spares the user buttons that would be refused.
    """

    key_name: str
    role: Role
    via: str
    csrf_token: str | None
    """Embedded for the scripts only when the caller came through a login session."""

    def may(self, needed: Role | str) -> bool:
        return may(self.role, Role(needed))

    @property
    def nav(self) -> list[tuple[str, str]]:
        return [(href, label) for href, label, needed in NAV if self.may(needed)]


def page_caller(request: Request) -> PageCaller | None:
    """The caller `allow_page` found for this request, or None on a public page."""
    caller: Caller | None = getattr(request.state, "caller", None)
    if caller is None:
        return None
    return PageCaller(
        key_name=caller.actor.key_name,
        role=caller.role,
        via=caller.via,
        csrf_token=caller.csrf_token if caller.via == "session" else None,
    )


def render(
    request: Request, template: str, context: dict[str, Any] | None = None, *, status: int = 200
) -> HTMLResponse:
    """`template` rendered for `request`: every page gets the statement about leads, its
    caller, and whether authentication is off. Pages show people's faces and the searches
    made for them, so no cache keeps a copy."""
    values = {
        "leads_statement": LEADS_STATEMENT,
        "caller": page_caller(request),
        "auth_off": request.app.state.settings.auth == "off",
        **(context or {}),
    }
    response = TEMPLATES.TemplateResponse(request, template, values, status_code=status)
    response.headers["Cache-Control"] = "no-store"
    return response
