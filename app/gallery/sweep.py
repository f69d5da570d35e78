"""Removing what a process killed mid-operation left behind, each time a gallery opens.

A kill can land between any two instructions. What it can leave, and why the
sweep may remove it:
- photo and chip files without a row: an enrollment writes its files inside
  its transaction, which died uncommitted. The sweep lists files and rows
  without any lock, then checks the few files without a row again holding the
  gallery's lock: an enrollment that was between writing its files and
  committing them has committed or rolled back by then, so only leftovers go
  (and files whose rows a deletion just removed, as the deletion was about to
  do). Other processes' writers wait only for that short check.
- temporary files of interrupted atomic writes (`.tmp-*`, index `.*.tmp`).
- embedding rows of a reindex that died: its version is inactive and its
  lease lapsed, or the process holding it is known dead. A face's first
  embedding stays, because it says which template the face's chip was cut for.
"""

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

from sqlalchemy import CursorResult, delete, func, select
from sqlalchemy.orm import Session

from app.db.engine import session_scope
from app.db.tables import Embedding, Face, ModelVersion, Photo
from app.db.types import utc_now
from app.gallery.changes import gallery_write
from app.gallery.context import GalleryContext
from app.gallery.owners import is_dead

log = logging.getLogger(__name__)

_GALLERY_FOLDERS = ("photos", "chips")
_PATH_CHUNK = 500


@dataclass(frozen=True)
class SweepReport:
    """What one sweep removed."""

    files: int
    embeddings: int


def sweep(context: GalleryContext) -> SweepReport:
    """Remove files without rows, temporary files and a dead reindex's rows."""
    suspects = _unlisted(context)
    with gallery_write(context.sessions) as write:
        session = write.session
        still_listed = _listed(session, suspects)
        files = _remove(context.files.root, suspects - still_listed)
        dead = _dead_versions(session)
        first = select(func.min(Embedding.id)).group_by(Embedding.face_id)
        deleted = session.execute(
            delete(Embedding).where(
                Embedding.model_version_id.in_(dead), Embedding.id.not_in(first)
            )
        )
        removed = cast(CursorResult[Any], deleted).rowcount
    files += context.index_store.remove_temporary()
    report = SweepReport(files=files, embeddings=removed or 0)
    if report.files or report.embeddings:
        log.warning(
            "removed %d leftover files and %d embeddings of an unfinished reindex",
            report.files,
            report.embeddings,
        )
    return report


def _dead_versions(session: Session) -> list[int]:
    """Inactive versions no live reindex is building: lease lapsed, or builder dead."""
    rows = session.execute(
        select(ModelVersion.id, ModelVersion.building_until, ModelVersion.building_by).where(
            ~ModelVersion.active
        )
    )
    now = utc_now()
    return [
        version_id for version_id, until, by in rows if until is None or until < now or is_dead(by)
    ]


def _unlisted(context: GalleryContext) -> set[str]:
    """Files under the gallery's folders that no row names, as seen without a lock."""
    with session_scope(context.sessions) as session:
        listed = set(session.scalars(select(Photo.stored_path)))
        listed.update(session.scalars(select(Face.chip_path)))
    root = context.files.root
    on_disk = {
        f"{folder}/{path.name}"
        for folder in _GALLERY_FOLDERS
        for path in (root / folder).iterdir()
        if path.is_file()
    }
    return on_disk - listed


def _listed(session: Session, paths: set[str]) -> set[str]:
    """Those of `paths` that a row names now."""
    wanted = sorted(paths)
    found: set[str] = set()
    for start in range(0, len(wanted), _PATH_CHUNK):
        chunk = wanted[start : start + _PATH_CHUNK]
        found.update(session.scalars(select(Photo.stored_path).where(Photo.stored_path.in_(chunk))))
        found.update(session.scalars(select(Face.chip_path).where(Face.chip_path.in_(chunk))))
    return found


def _remove(root: Path, relatives: set[str]) -> int:
    for relative in relatives:
        (root / relative).unlink(missing_ok=True)
    return len(relatives)
