"""Keeping the audit trail for its retention period, and no longer.

Records are removed from the oldest on, never from the middle, so what is
kept is still one chain: the head row's anchor is set to the hash of the last
record removed, which the oldest kept record chains from, and the trimming is
itself recorded (how many, up to which record, by whom).
"""

from datetime import datetime

from sqlalchemy import delete, func, select, update
from sqlalchemy.orm import Session

from app.audit.actor import Actor
from app.audit.trail import lock_trail, record, timestamp
from app.db.tables import AuditEvent, AuditHead


def trim_trail(session: Session, *, before: datetime, by: Actor) -> int:
    """Remove the records written before `before` (the oldest run of them); how many went."""
    lock_trail(session)
    first_kept = session.scalar(
        select(func.min(AuditEvent.id)).where(AuditEvent.at >= timestamp(before))
    )
    last_removed = (
        first_kept - 1 if first_kept is not None else session.scalar(select(AuditHead.last_id))
    ) or 0
    anchor = session.execute(select(AuditHead.anchor_id, AuditHead.anchor_hash)).one()
    if last_removed <= anchor.anchor_id:
        return 0
    anchor_hash = session.scalar(select(AuditEvent.row_hash).where(AuditEvent.id == last_removed))
    removed = session.execute(delete(AuditEvent).where(AuditEvent.id <= last_removed)).rowcount  # type: ignore[attr-defined]
    session.execute(
        update(AuditHead)
        .where(AuditHead.id == 1)
        .values(anchor_id=last_removed, anchor_hash=anchor_hash)
    )
    details = {
        "before": timestamp(before),
        "removed": removed,
        "anchor_id": last_removed,
        "anchor_hash": anchor_hash,
    }
    record(session, by, "audit_trim", details=details)
    return int(removed)
