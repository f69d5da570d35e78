"""Reading the audit trail: filtered, paged, newest first, and as CSV.

"Who searched for or enrolled this person" is a filter on `subject_id`,
answered through the `audit_subjects` index: every probe that returned the
subject as a candidate, every enrollment, change and deletion of them.
"""

import csv
import io
import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Select, func, select
from sqlalchemy.orm import Session

from app.audit.trail import timestamp
from app.db.tables import AuditEvent, AuditSubject

CSV_COLUMNS = (
    "id",
    "at",
    "key_name",
    "role",
    "client",
    "request_id",
    "action",
    "outcome",
    "case_reference",
    "purpose",
    "model_version_id",
    "subject_ids",
    "details",
    "row_hash",
)


@dataclass(frozen=True)
class AuditFilter:
    """Which records to read; every field left None matches all."""

    action: str | None = None
    key_name: str | None = None
    subject_id: int | None = None
    case_reference: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    """Exclusive."""


def search_trail(
    session: Session, wanted: AuditFilter, *, offset: int, limit: int
) -> tuple[list[dict[str, Any]], int]:
    """One page of matching records, newest first, and how many match in all."""
    statement = _filtered(wanted)
    total = session.scalar(select(func.count()).select_from(statement.subquery())) or 0
    rows = session.scalars(statement.order_by(AuditEvent.id.desc()).offset(offset).limit(limit))
    return [record_view(row) for row in rows], total


def trail_csv(session: Session, wanted: AuditFilter) -> Iterator[str]:
    """Every matching record as CSV lines, newest first, read in batches."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(CSV_COLUMNS)
    statement = _filtered(wanted).order_by(AuditEvent.id.desc()).execution_options(yield_per=500)
    for row in session.scalars(statement):
        writer.writerow([_csv_cell(getattr(row, column)) for column in CSV_COLUMNS])
        if buffer.tell() > 64 * 1024:
            yield _drain(buffer)
    yield _drain(buffer)


def record_view(row: AuditEvent) -> dict[str, Any]:
    """A record as the API answers it: JSON parts parsed, hashes kept for checking."""
    return {
        "id": row.id,
        "at": row.at,
        "key_name": row.key_name,
        "role": row.role,
        "client": row.client,
        "request_id": row.request_id,
        "action": row.action,
        "outcome": row.outcome,
        "case_reference": row.case_reference,
        "purpose": row.purpose,
        "model_version_id": row.model_version_id,
        "subject_ids": json.loads(row.subject_ids),
        "details": json.loads(row.details),
        "prev_hash": row.prev_hash,
        "row_hash": row.row_hash,
    }


def _filtered(wanted: AuditFilter) -> Select[Any]:
    statement = select(AuditEvent)
    if wanted.action is not None:
        statement = statement.where(AuditEvent.action == wanted.action)
    if wanted.key_name is not None:
        statement = statement.where(AuditEvent.key_name == wanted.key_name)
    if wanted.case_reference is not None:
        statement = statement.where(AuditEvent.case_reference == wanted.case_reference)
    if wanted.since is not None:
        statement = statement.where(AuditEvent.at >= timestamp(wanted.since))
    if wanted.until is not None:
        statement = statement.where(AuditEvent.at < timestamp(wanted.until))
    if wanted.subject_id is not None:
        naming = select(AuditSubject.audit_id).where(AuditSubject.subject_id == wanted.subject_id)
        statement = statement.where(AuditEvent.id.in_(naming))
    return statement


def _csv_cell(value: object) -> str:
    """A cell a spreadsheet shows as text: a leading `= + - @` would be run as a formula."""
    text = "" if value is None else str(value)
    return f"'{text}" if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


def _drain(buffer: io.StringIO) -> str:
    text = buffer.getvalue()
    buffer.seek(0)
    buffer.truncate()
    return text
