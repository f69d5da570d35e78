"""The Jinja2 environment the pages render with, and a helper that renders one page."""

from pathlib import Path
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates

WEB_DIR = Path(__file__).resolve().parent
STATIC_DIR = WEB_DIR / "static"

# Autoescaping is on (Starlette's default for Jinja2Templates): names and notes
# typed by users reach the pages as text, never as markup.
TEMPLATES = Jinja2Templates(directory=WEB_DIR / "templates")

LEADS_STATEMENT = (
    "Candidates are investigative leads for a person to review, never an identification."
)


def render(
    request: Request, template: str, context: dict[str, Any] | None = None, *, status: int = 200
) -> HTMLResponse:
    """`template` rendered for `request`; every page gets the statement about leads."""
    values = {"leads_statement": LEADS_STATEMENT, **(context or {})}
    return TEMPLATES.TemplateResponse(request, template, values, status_code=status)
