"""Checking the audit trail: is every record as written, and is none missing or added?

The walk recomputes each record's hash from its stored fields and follows the
chain from the anchor (where retention last cut the trail) to the head row. It
stops at the first break and names the record: an edited field, a removed or
inserted record, a cut tail, or a subject index that no longer matches what the
record says, which would hide the record from "who searched for this person".

The walk reads one state of the trail, as of its start: a service goes on
recording searches while it is checked, and a record committed mid-walk would
otherwise look like one slipped in past the head.
"""

import json
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from app.audit.chain import HASHED_FIELDS, record_hash
from app.db.tables import AuditEvent, AuditHead, AuditSubject

BATCH = 2000


@dataclass(frozen=True)
class TrailCheck:
    intact: bool
    checked: int
    """Records whose hash was recomputed."""
    head_id: int
    head_hash: str
    broken_at: int | None = None
    """The id of the first record that does not hold, when the trail is not intact."""
    problem: str | None = None


def verify_trail(session: Session) -> TrailCheck:
    """Walk the whole trail in id order; the first break found, or that it is intact.

    What is checked is what has been committed, read on a connection of its own
    (`session` names the database), so the walk sees one state of the trail."""
    with _one_state(session.get_bind().engine) as reading:
        return _walk(reading)


def _walk(session: Session) -> TrailCheck:
    head = session.execute(select(AuditHead)).scalar_one()
    expected_id, expected_prev, checked = head.anchor_id + 1, head.anchor_hash, 0
    start = head.anchor_id
    while True:
        rows = session.scalars(
            select(AuditEvent).where(AuditEvent.id > start).order_by(AuditEvent.id).limit(BATCH)
        ).all()
        if not rows:
            break
        subjects = _indexed_subjects(session, rows[0].id, rows[-1].id)
        for row in rows:
            problem = _problem(row, expected_id, expected_prev, subjects.get(row.id, []))
            if not problem and row.id > head.last_id:
                problem = (
                    f"the trail's head names record {head.last_id} as the last one: this "
                    "record was added without going through the trail"
                )
            if problem:
                return _broken(head, checked, row.id, problem)
            expected_id, expected_prev, checked = row.id + 1, row.row_hash, checked + 1
        start = rows[-1].id
    if (expected_id - 1, expected_prev) != (head.last_id, head.last_hash):
        problem = (
            f"the trail ends at record {expected_id - 1} but its head names record "
            f"{head.last_id}: records were removed from the end, or the head was changed"
        )
        return _broken(head, checked, expected_id, problem)
    return TrailCheck(True, checked, head.last_id, head.last_hash)


@contextmanager
def _one_state(engine: Engine) -> Iterator[Session]:
    """A session that reads the database as of its first statement: REPEATABLE READ on
    PostgreSQL; on SQLite an explicit transaction, since its driver opens none for
    reads and each statement would see the latest commit."""
    if engine.dialect.name == "postgresql":
        engine = engine.execution_options(isolation_level="REPEATABLE READ")
    with engine.connect() as connection:
        if engine.dialect.name == "sqlite":
            connection.exec_driver_sql("BEGIN")
        with Session(bind=connection) as session:
            yield session
        connection.rollback()


def chain_problem(row: AuditEvent, expected_id: int, expected_prev: str) -> str | None:
    """What is wrong with `row` as the record after `expected_prev`'s, if anything."""
    if row.id != expected_id:
        return f"record {expected_id} is missing (the next one is {row.id})"
    if row.prev_hash != expected_prev:
        return "it does not chain from the record before it: a record was removed or replaced"
    fields = {name: getattr(row, name) for name in HASHED_FIELDS}
    if record_hash(fields, row.prev_hash) != row.row_hash:
        return "its fields are not those it was written with"
    return None


def _problem(row: AuditEvent, expected_id: int, expected_prev: str, indexed: list[int]) -> str:
    chained = chain_problem(row, expected_id, expected_prev)
    if chained is not None:
        return chained
    if sorted(json.loads(row.subject_ids)) != sorted(indexed):
        return "the subject index does not match the subjects the record names"
    return ""


def _indexed_subjects(session: Session, first: int, last: int) -> dict[int, list[int]]:
    found: dict[int, list[int]] = defaultdict(list)
    rows = session.execute(
        select(AuditSubject.audit_id, AuditSubject.subject_id).where(
            AuditSubject.audit_id.between(first, last)
        )
    )
    for audit_id, subject_id in rows:
        found[audit_id].append(subject_id)
    return found


def _broken(head: AuditHead, checked: int, at: int, problem: str) -> TrailCheck:
    return TrailCheck(False, checked, head.last_id, head.last_hash, broken_at=at, problem=problem)
