"""Writing audit records, inside the transaction of the action each one records.

The caller passes its own session: the record commits with the action or not
at all, so no search is answered, and no change kept, without its record. The
first statement locks the one `audit_head` row (a row lock in PostgreSQL, the
write lock in SQLite), so records take consecutive ids in commit order and each
chains from the one committed before it. A transaction that also holds the
gallery's lock takes it first, always in that order.
"""

from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any, Literal

from sqlalchemy import insert, select, update
from sqlalchemy.orm import Session

from app.audit.actor import Actor, Case
from app.audit.chain import canonical_json, record_hash
from app.db.tables import AuditEvent, AuditHead, AuditSubject

Action = Literal[
    "probe",
    "verify",
    "enroll_photo",
    "subject_create",
    "subject_update",
    "subject_delete",
    "subject_purge",
    "face_delete",
    "key_create",
    "key_revoke",
    "job_start",
    "job_cancel",
    "login",
    "login_failed",
    "logout",
    "audit_trim",
]
Outcome = Literal["ok", "refused"]


def record(
    session: Session,
    actor: Actor,
    action: Action,
    *,
    outcome: Outcome = "ok",
    subject_ids: Iterable[int] = (),
    details: Mapping[str, Any] | None = None,
    case: Case | None = None,
    model_version_id: int | None = None,
) -> int:
    """Append one record in `session`'s transaction; return its id.

    `subject_ids`: every subject the action was about or answered with (the
    subject enrolled, the candidates of a probe); `details`: target ids, image
    hashes and the answer, as JSON-ready values. Images themselves are never kept.
    """
    lock_trail(session)
    head = session.execute(select(AuditHead.last_id, AuditHead.last_hash)).one()
    subjects = sorted(set(subject_ids))
    fields: dict[str, Any] = {
        "id": head.last_id + 1,
        "at": timestamp(datetime.now(UTC)),
        "key_name": actor.key_name,
        "role": actor.role,
        "client": actor.client[:64],
        "request_id": actor.request_id[:64],
        "action": action,
        "outcome": outcome,
        "case_reference": case.reference if case else None,
        "purpose": case.purpose if case else None,
        "model_version_id": model_version_id,
        "subject_ids": canonical_json(subjects),
        "details": canonical_json(dict(details or {})),
    }
    row_hash = record_hash(fields, head.last_hash)
    session.execute(
        insert(AuditEvent).values(**fields, prev_hash=head.last_hash, row_hash=row_hash)
    )
    if subjects:
        session.execute(
            insert(AuditSubject), [{"audit_id": fields["id"], "subject_id": s} for s in subjects]
        )
    session.execute(
        update(AuditHead).where(AuditHead.id == 1).values(last_id=fields["id"], last_hash=row_hash)
    )
    return int(fields["id"])


def lock_trail(session: Session) -> None:
    """Hold the trail's lock until `session` commits or rolls back."""
    session.execute(update(AuditHead).where(AuditHead.id == 1).values(last_id=AuditHead.last_id))


def timestamp(moment: datetime) -> str:
    """`moment` as the trail writes times: UTC, microseconds, a `Z` (sorts as text)."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
