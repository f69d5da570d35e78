"""Removing what a process killed mid-operation left behind, each time a gallery opens.

A kill can land between any two instructions. What it can leave, and why the
sweep may remove it:
- photo and chip files without a row: an enrollment writes its files inside
  its transaction, which died uncommitted. The sweep holds the gallery's lock
  while it compares files with rows, so no enrollment is between writing its
  files and committing them meanwhile; files whose rows a deletion just removed
  go too, as the deletion was about to do.
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

from app.db.tables import Embedding, Face, ModelVersion, Photo
from app.db.types import utc_now
from app.gallery.changes import gallery_write
from app.gallery.context import GalleryContext
from app.gallery.owners import is_dead

log = logging.getLogger(__name__)

_GALLERY_FOLDERS = ("photos", "chips")


@dataclass(frozen=True)
class SweepReport:
    """What one sweep removed."""

    files: int
    embeddings: int


def sweep(context: GalleryContext) -> SweepReport:
    """Remove files without rows, temporary files and a dead reindex's rows."""
    with gallery_write(context.sessions) as write:
        session = write.session
        kept = set(session.scalars(select(Photo.stored_path)))
        kept.update(session.scalars(select(Face.chip_path)))
        files = _remove_unlisted(context.files.root, kept)
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


def _remove_unlisted(root: Path, kept: set[str]) -> int:
    removed = 0
    for folder in _GALLERY_FOLDERS:
        for path in (root / folder).iterdir():
            relative = f"{folder}/{path.name}"
            if path.is_file() and relative not in kept:
                path.unlink(missing_ok=True)
                removed += 1
    return removed
