"""`/admin/audit`: reading, exporting, checking and trimming the audit trail (admins only).

Every probe, verify, enrollment, subject change, face deletion, key change,
job start or cancel and login is one record (see `app.audit.trail`). Reading
the trail is not itself recorded; trimming it is.
"""

import dataclasses
from collections.abc import Iterator
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query
from fastapi.responses import StreamingResponse
from pydantic import BaseModel

from app.access.roles import Role
from app.api.auth import CallerDep, SessionsDep, allow
from app.api.errors import router_errors
from app.api.params import ID_BOUND, Canonical, Limit, Offset
from app.audit.query import AuditFilter, search_trail, trail_csv
from app.audit.retention import trim_trail
from app.audit.verify import verify_trail
from app.db.engine import session_scope
from app.schemas import UtcInstant

router = APIRouter(prefix="/admin/audit", tags=["audit"], responses=router_errors(503))


class AuditPage(BaseModel):
    items: list[dict[str, Any]]
    total: int


class TrailCheckOut(BaseModel):
    intact: bool
    checked: int
    head_id: int
    head_hash: str
    broken_at: int | None
    problem: str | None


class TrimOut(BaseModel):
    removed: int


def audit_filter(
    action: Annotated[str | None, Query(max_length=32, description="e.g. probe")] = None,
    key_name: Annotated[str | None, Query(max_length=128)] = None,
    subject_id: Annotated[
        int | None,
        Query(ge=1, lt=ID_BOUND, description="Records that name this subject."),
        Canonical,
    ] = None,
    case_reference: Annotated[str | None, Query(max_length=200)] = None,
    since: Annotated[UtcInstant | None, Query(description="From (inclusive).")] = None,
    until: Annotated[UtcInstant | None, Query(description="To (exclusive).")] = None,
) -> AuditFilter:
    return AuditFilter(
        action=action,
        key_name=key_name,
        subject_id=subject_id,
        case_reference=case_reference,
        since=since,
        until=until,
    )


FilterDep = Annotated[AuditFilter, Depends(audit_filter)]


@router.get("", dependencies=[allow(Role.admin)])
def audit(
    sessions: SessionsDep, wanted: FilterDep, offset: Offset = 0, limit: Limit = 50
) -> AuditPage:
    """Matching records, newest first: `{"items": [...], "total": N}`."""
    with session_scope(sessions) as session:
        items, total = search_trail(session, wanted, offset=offset, limit=limit)
    return AuditPage(items=items, total=total)


@router.get(
    "/export.csv",
    response_class=StreamingResponse,
    responses={200: {"content": {"text/csv": {}}}},
    dependencies=[allow(Role.admin)],
)
def audit_csv(sessions: SessionsDep, wanted: FilterDep) -> StreamingResponse:
    """Every matching record as CSV, newest first (cells that a spreadsheet would run as a
    formula are quoted with a leading apostrophe)."""

    def lines() -> Iterator[str]:
        with session_scope(sessions) as session:
            yield from trail_csv(session, wanted)

    return StreamingResponse(
        lines(),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": 'attachment; filename="lineup-audit.csv"'},
    )


@router.get("/verify", dependencies=[allow(Role.admin)])
def audit_verify(sessions: SessionsDep) -> TrailCheckOut:
    """Recompute the chain: intact, or the first record that does not hold and why."""
    with session_scope(sessions) as session:
        check = verify_trail(session)
    return TrailCheckOut(**dataclasses.asdict(check))


@router.delete("", dependencies=[allow(Role.admin)])
def audit_trim(
    sessions: SessionsDep,
    caller: CallerDep,
    before: Annotated[UtcInstant, Query(description="Remove records written before this.")],
) -> TrimOut:
    """Remove the oldest records, written before `before`; the trim itself is recorded."""
    with session_scope(sessions) as session:
        removed = trim_trail(session, before=before, by=caller.actor)
    return TrimOut(removed=removed)
