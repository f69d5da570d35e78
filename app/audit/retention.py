"""Keeping the audit trail for its retention period, and no longer.

Records are removed from the oldest on, never from the middle, so what is
kept is still one chain: the head row's anchor is set to the hash of the last
record removed, which the oldest kept record chains from, and the trimming is
itself recorded (how many, up to which record, by whom).

Removing records must not remove the evidence that they were altered: the
records about to go are checked first, and where their chain does not hold,
the trimming's own record says at which record and why, so that the kept
trail (which verifies from its new anchor) still tells of it.
"""

import logging
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import delete, func, select, update
from sqlalchemy.orm import Session

from app.audit.actor import Actor
from app.audit.trail import lock_trail, record, timestamp
from app.audit.verify import chain_problem
from app.db.tables import AuditEvent, AuditHead

log = logging.getLogger(__name__)

_BATCH = 2000


@dataclass(frozen=True)
class _RangeCheck:
    last_hash: str
    """The stored hash of the last record in the range: what the kept trail chains from."""
    broken_at: int | None = None
    problem: str | None = None


def trim_trail(session: Session, *, before: datetime, by: Actor) -> int:
    """Remove the records written before `before` (the oldest run of them); how many went."""
    lock_trail(session)
    head = session.execute(
        select(AuditHead.last_id, AuditHead.anchor_id, AuditHead.anchor_hash)
    ).one()
    first_kept = session.scalar(
        select(func.min(AuditEvent.id)).where(AuditEvent.at >= timestamp(before))
    )
    last_removed = first_kept - 1 if first_kept is not None else head.last_id
    if last_removed <= head.anchor_id:
        return 0
    check = _check_range(session, after=head.anchor_id, prev=head.anchor_hash, upto=last_removed)
    removed = session.execute(delete(AuditEvent).where(AuditEvent.id <= last_removed)).rowcount  # type: ignore[attr-defined]
    session.execute(
        update(AuditHead)
        .where(AuditHead.id == 1)
        .values(anchor_id=last_removed, anchor_hash=check.last_hash)
    )
    details: dict[str, object] = {
        "before": timestamp(before),
        "removed": removed,
        "anchor_id": last_removed,
        "anchor_hash": check.last_hash,
        "removed_intact": check.problem is None,
    }
    if check.problem is not None:
        details |= {"broken_at": check.broken_at, "problem": check.problem}
        log.warning(
            "the audit records trimmed were altered: record %s: %s", check.broken_at, check.problem
        )
    record(session, by, "audit_trim", details=details)
    return int(removed)


def _check_range(session: Session, *, after: int, prev: str, upto: int) -> _RangeCheck:
    """Walk records `after < id <= upto` as `verify_trail` does; the first break, if any."""
    expected, problem, broken_at = after + 1, None, None
    while expected <= upto:
        rows = session.scalars(
            select(AuditEvent)
            .where(AuditEvent.id >= expected, AuditEvent.id <= upto)
            .order_by(AuditEvent.id)
            .limit(_BATCH)
        ).all()
        if not rows:
            break
        for row in rows:
            if problem is None:
                problem = chain_problem(row, expected, prev)
                broken_at = row.id if problem else None
            expected, prev = row.id + 1, row.row_hash
    if problem is None and expected <= upto:
        problem, broken_at = f"records {expected} to {upto} are missing", expected
    return _RangeCheck(last_hash=prev, broken_at=broken_at, problem=problem)
