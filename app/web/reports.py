"""`/reports/{name}/...`: evaluation reports (`lineup evaluate --report DIR`) served read-only.

A report is a folder `<data_dir>/reports/<name>/` with an `index.html` and
its figures. Only files inside that folder, of the kinds a report is made of,
are served: a name or path that tries to climb out (`..`, an absolute path,
a symbolic link pointing elsewhere) is answered 404, like a missing file.
"""

import re
from dataclasses import dataclass
from pathlib import Path

from fastapi import APIRouter, HTTPException
from fastapi.responses import FileResponse, RedirectResponse

from app.access.roles import Role
from app.api.auth import allow_page
from app.api.deps import SettingsDep

router = APIRouter(include_in_schema=False)

REPORT_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")
# No SVG or JavaScript: a report is read on the app's own origin.
MEDIA_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".png": "image/png",
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".css": "text/css; charset=utf-8",
    ".json": "application/json",
    ".csv": "text/csv; charset=utf-8",
    ".txt": "text/plain; charset=utf-8",
}


@dataclass(frozen=True)
class Report:
    name: str
    modified: float


def reports_dir(data_dir: Path) -> Path:
    return data_dir / "reports"


def list_reports(data_dir: Path) -> list[Report]:
    """Report folders that hold an `index.html`, newest first."""
    root = reports_dir(data_dir)
    if not root.is_dir():
        return []
    found = [
        Report(name=index.parent.name, modified=index.stat().st_mtime)
        for index in root.glob("*/index.html")
        if REPORT_NAME.fullmatch(index.parent.name)
    ]
    return sorted(found, key=lambda report: report.modified, reverse=True)


def report_file(data_dir: Path, name: str, relative: str) -> Path | None:
    """The file `relative` inside report `name`, or None if it is missing or not allowed."""
    if not REPORT_NAME.fullmatch(name) or "\\" in relative or "\x00" in relative:
        return None
    folder = (reports_dir(data_dir) / name).resolve()
    candidate = (folder / relative).resolve()
    if not candidate.is_relative_to(folder) or candidate == folder:
        return None
    if candidate.suffix.lower() not in MEDIA_TYPES or not candidate.is_file():
        return None
    return candidate


@router.get("/reports/{name}", dependencies=[allow_page(Role.admin)])
def report_home(name: str) -> RedirectResponse:
    """The report's folder URL, so its relative links to figures resolve."""
    return RedirectResponse(f"/reports/{name}/", status_code=307)


@router.get("/reports/{name}/{relative:path}", dependencies=[allow_page(Role.admin)])
def report_page(name: str, relative: str, settings: SettingsDep) -> FileResponse:
    """A report's `index.html` (for an empty path) or one of its files."""
    path = report_file(settings.data_dir, name, relative or "index.html")
    if path is None:
        raise HTTPException(status_code=404, detail=f"no such report file: {name}/{relative}")
    return FileResponse(
        path,
        media_type=MEDIA_TYPES[path.suffix.lower()],
        headers={"X-Content-Type-Options": "nosniff"},
    )
