"""The audit trail's hash chain on real databases: written in order by concurrent writers,
and every kind of tampering found where it was done."""

import hashlib
import json
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime

import pytest
from sqlalchemy import delete, insert, select, update
from sqlalchemy.orm import Session, sessionmaker

from app.audit.actor import Actor, Case
from app.audit.chain import GENESIS, record_hash
from app.audit.retention import trim_trail
from app.audit.trail import record
from app.audit.verify import TrailCheck, verify_trail
from app.db.engine import session_scope
from app.db.tables import AuditEvent, AuditHead, AuditSubject

Sessions = sessionmaker[Session]
ACTOR = Actor(key_name="ivy", role="investigator", client="10.0.0.7", request_id="req-1")
CASE = Case(reference="CASE-17", purpose="a burglary")


def write(sessions: Sessions, count: int, *, subjects: tuple[int, ...] = ()) -> list[int]:
    """`count` probe records, each in a transaction of its own; their ids."""
    ids = []
    for number in range(count):
        with session_scope(sessions) as session:
            ids.append(
                record(
                    session,
                    ACTOR,
                    "probe",
                    case=CASE,
                    subject_ids=subjects,
                    details={"n": number, "image_sha256": ["ab" * 32]},
                    model_version_id=1,
                )
            )
    return ids


def check(sessions: Sessions) -> TrailCheck:
    with session_scope(sessions) as session:
        return verify_trail(session)


def events(sessions: Sessions) -> list[AuditEvent]:
    with session_scope(sessions) as session:
        return list(session.scalars(select(AuditEvent).order_by(AuditEvent.id)))


def change(sessions: Sessions, *statements: object) -> None:
    """Tamper with the tables directly, as someone with the database's password could."""
    with session_scope(sessions) as session:
        for statement in statements:
            session.execute(statement)  # type: ignore[call-overload]


def written_at(event: AuditEvent) -> datetime:
    return datetime.strptime(event.at, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)


def test_a_record_hash_is_sha256_of_its_canonical_json_after_the_previous_hash() -> None:
    fields = {
        "id": 1,
        "at": "2026-01-02T03:04:05.000006Z",
        "key_name": "ivy",
        "role": "investigator",
        "client": "10.0.0.7",
        "request_id": "req-1",
        "action": "probe",
        "outcome": "ok",
        "case_reference": "CASE-17",
        "purpose": "a burglary",
        "model_version_id": 1,
        "subject_ids": "[7]",
        "details": '{"n":0}',
    }
    by_hand = (
        '{"prev":"' + GENESIS + '","record":{"action":"probe","at":"2026-01-02T03:04:05.000006Z",'
        '"case_reference":"CASE-17","client":"10.0.0.7","details":"{\\"n\\":0}","id":1,'
        '"key_name":"ivy","model_version_id":1,"outcome":"ok","purpose":"a burglary",'
        '"request_id":"req-1","role":"investigator","subject_ids":"[7]"}}'
    )
    assert record_hash(fields, GENESIS) == hashlib.sha256(by_hand.encode()).hexdigest()
    assert record_hash({**fields, "purpose": None}, GENESIS) != record_hash(fields, GENESIS)
    assert record_hash(fields, "1" * 64) != record_hash(fields, GENESIS)


def test_records_chain_from_one_another_and_the_head_names_the_last(sessions: Sessions) -> None:
    assert check(sessions) == TrailCheck(True, 0, 0, GENESIS)
    assert write(sessions, 3, subjects=(7, 3, 7)) == [1, 2, 3]
    written = events(sessions)
    assert [event.prev_hash for event in written] == [
        GENESIS,
        written[0].row_hash,
        written[1].row_hash,
    ]
    assert json.loads(written[0].subject_ids) == [3, 7]
    assert (written[0].case_reference, written[0].purpose) == ("CASE-17", "a burglary")
    with session_scope(sessions) as session:
        head = session.scalars(select(AuditHead)).one()
        assert (head.last_id, head.last_hash) == (3, written[2].row_hash)
        indexed = session.execute(select(AuditSubject.audit_id, AuditSubject.subject_id)).all()
        assert sorted(indexed) == [(i, s) for i in (1, 2, 3) for s in (3, 7)]
    assert check(sessions) == TrailCheck(True, 3, 3, written[2].row_hash)


def test_concurrent_writers_make_one_chain_of_consecutive_ids(sessions: Sessions) -> None:
    """Threads, each on its own connection, record at once: the head row serialises them."""
    writers, each = 6, 8
    barrier = threading.Barrier(writers)

    def run(_: int) -> list[int]:
        barrier.wait()
        return write(sessions, each, subjects=(1,))

    with ThreadPoolExecutor(max_workers=writers) as pool:
        ids = [i for batch in pool.map(run, range(writers)) for i in batch]

    assert sorted(ids) == list(range(1, writers * each + 1))
    result = check(sessions)
    assert (result.intact, result.checked, result.head_id) == (True, writers * each, writers * each)


def test_the_check_holds_while_records_are_being_written(sessions: Sessions) -> None:
    """A check run on a live service, with searches recorded meanwhile, sees one state of
    the trail: a record committed during the walk is no reason to call the trail broken."""
    write(sessions, 5)
    stop = threading.Event()

    def keep_writing() -> int:
        written = 0
        while not stop.is_set():
            written += len(write(sessions, 1))
        return written

    with ThreadPoolExecutor(max_workers=1) as pool:
        writer = pool.submit(keep_writing)
        try:
            results = [check(sessions) for _ in range(40)]
        finally:
            stop.set()
        assert writer.result() > 0
    assert [r.problem for r in results if not r.intact] == []
    assert check(sessions).intact


@pytest.mark.parametrize(
    ("column", "value"),
    [
        ("details", '{"n":99,"image_sha256":[]}'),
        ("key_name", "someone-else"),
        ("at", "2020-01-01T00:00:00.000000Z"),
        ("case_reference", "CASE-18"),
        ("purpose", None),
        ("outcome", "refused"),
        ("model_version_id", 2),
    ],
)
def test_an_edited_field_is_found_at_its_record(
    sessions: Sessions, column: str, value: object
) -> None:
    write(sessions, 5)
    change(sessions, update(AuditEvent).where(AuditEvent.id == 3).values({column: value}))
    result = check(sessions)
    assert (result.intact, result.broken_at, result.checked) == (False, 3, 2)
    assert "fields" in (result.problem or "")


def test_a_record_rewritten_with_a_fresh_hash_breaks_the_next_one(sessions: Sessions) -> None:
    """Someone who edits a record and recomputes its hash still breaks its successor."""
    write(sessions, 5)
    third = events(sessions)[2]
    fields = {column: getattr(third, column) for column in ("id", "at", "role", "client")}
    forged = {
        **fields,
        "key_name": "someone-else",
        "request_id": third.request_id,
        "action": third.action,
        "outcome": third.outcome,
        "case_reference": third.case_reference,
        "purpose": third.purpose,
        "model_version_id": third.model_version_id,
        "subject_ids": third.subject_ids,
        "details": third.details,
    }
    new_hash = record_hash(forged, third.prev_hash)
    change(
        sessions,
        update(AuditEvent)
        .where(AuditEvent.id == 3)
        .values(key_name="someone-else", row_hash=new_hash),
    )
    result = check(sessions)
    assert (result.intact, result.broken_at) == (False, 4)


def test_a_removed_record_is_found(sessions: Sessions) -> None:
    write(sessions, 5)
    change(sessions, delete(AuditEvent).where(AuditEvent.id == 3))
    result = check(sessions)
    assert (result.intact, result.broken_at) == (False, 4)
    assert "record 3 is missing" in (result.problem or "")


def test_a_cut_tail_is_found_by_the_head(sessions: Sessions) -> None:
    write(sessions, 5)
    change(sessions, delete(AuditEvent).where(AuditEvent.id >= 4))
    result = check(sessions)
    assert (result.intact, result.broken_at, result.checked) == (False, 4, 3)
    assert "head" in (result.problem or "")


def test_a_record_added_after_the_head_is_found(sessions: Sessions) -> None:
    """A forged record that chains correctly from the last one, slipped in without
    going through the trail (so the head does not name it)."""
    write(sessions, 3)
    last = events(sessions)[-1]
    fields = {
        "id": 4,
        "at": last.at,
        "key_name": "ivy",
        "role": "investigator",
        "client": "10.0.0.7",
        "request_id": "forged",
        "action": "probe",
        "outcome": "ok",
        "case_reference": "CASE-17",
        "purpose": None,
        "model_version_id": 1,
        "subject_ids": "[]",
        "details": "{}",
    }
    row = {**fields, "prev_hash": last.row_hash, "row_hash": record_hash(fields, last.row_hash)}
    change(sessions, insert(AuditEvent).values(**row))
    result = check(sessions)
    assert (result.intact, result.broken_at) == (False, 4)


def test_a_record_slipped_into_the_middle_is_found(sessions: Sessions) -> None:
    """Making room for a record means renumbering its successors, whose hashes cover
    their ids; the forged one chains from its predecessor, and still the next breaks."""
    write(sessions, 4)
    second = events(sessions)[1]
    for event_id in (4, 3):
        change(
            sessions, update(AuditEvent).where(AuditEvent.id == event_id).values(id=event_id + 1)
        )
    fields = {
        "id": 3,
        "at": second.at,
        "key_name": "ivy",
        "role": "investigator",
        "client": "10.0.0.7",
        "request_id": "forged",
        "action": "probe",
        "outcome": "ok",
        "case_reference": "CASE-17",
        "purpose": None,
        "model_version_id": 1,
        "subject_ids": "[]",
        "details": "{}",
    }
    row = {**fields, "prev_hash": second.row_hash, "row_hash": record_hash(fields, second.row_hash)}
    change(
        sessions,
        insert(AuditEvent).values(**row),
        update(AuditHead).where(AuditHead.id == 1).values(last_id=5),
    )
    result = check(sessions)
    assert (result.intact, result.broken_at) == (False, 4)


@pytest.mark.parametrize("tampering", ["removed", "added"])
def test_a_tampered_subject_index_is_found(sessions: Sessions, tampering: str) -> None:
    """Removing a row of `audit_subjects` would hide a search from "who searched for this
    person"; adding one would frame someone. Either is found."""
    write(sessions, 2, subjects=(7,))
    write(sessions, 2, subjects=(8,))
    statement: Callable[[], object] = {
        "removed": lambda: delete(AuditSubject).where(AuditSubject.audit_id == 3),
        "added": lambda: insert(AuditSubject).values(audit_id=3, subject_id=7),
    }[tampering]
    change(sessions, statement())
    result = check(sessions)
    assert (result.intact, result.broken_at) == (False, 3)
    assert "subject index" in (result.problem or "")


def test_trimming_keeps_the_rest_one_verifiable_chain(sessions: Sessions) -> None:
    write(sessions, 5)
    before = written_at(events(sessions)[3])  # records 1-3 were written before record 4
    with session_scope(sessions) as session:
        assert trim_trail(session, before=before, by=ACTOR) == 3
    kept = events(sessions)
    assert [event.id for event in kept] == [4, 5, 6]
    trim = kept[-1]
    assert (trim.action, trim.key_name) == ("audit_trim", "ivy")
    assert json.loads(trim.details)["removed"] == 3 and json.loads(trim.details)["anchor_id"] == 3
    assert check(sessions) == TrailCheck(True, 3, 6, trim.row_hash)

    with session_scope(sessions) as session:  # nothing more is that old: no trim, no record
        assert trim_trail(session, before=before, by=ACTOR) == 0
    assert len(events(sessions)) == 3

    change(sessions, delete(AuditEvent).where(AuditEvent.id == 4))  # the oldest one kept
    result = check(sessions)
    assert (result.intact, result.broken_at) == (False, 5)


def test_trimming_everything_keeps_the_trim_record(sessions: Sessions) -> None:
    write(sessions, 3)
    with session_scope(sessions) as session:
        assert trim_trail(session, before=datetime.now(UTC), by=ACTOR) == 3
    assert [event.action for event in events(sessions)] == ["audit_trim"]
    result = check(sessions)
    assert (result.intact, result.checked, result.head_id) == (True, 1, 4)


def test_trimming_altered_records_keeps_the_evidence_in_its_own_record(
    sessions: Sessions,
) -> None:
    """Trimming must not launder tampering: the records it removes are checked first."""
    write(sessions, 5)
    change(sessions, update(AuditEvent).where(AuditEvent.id == 2).values(client="elsewhere"))
    before = written_at(events(sessions)[3])
    with session_scope(sessions) as session:
        assert trim_trail(session, before=before, by=ACTOR) == 3
    trim = events(sessions)[-1]
    details = json.loads(trim.details)
    assert details["removed_intact"] is False and details["broken_at"] == 2
    assert "fields" in details["problem"]
    assert check(sessions).intact  # what is kept still verifies, the trim record with it


def test_trimming_intact_records_says_so(sessions: Sessions) -> None:
    write(sessions, 3)
    with session_scope(sessions) as session:
        trim_trail(session, before=datetime.now(UTC), by=ACTOR)
    details = json.loads(events(sessions)[-1].details)
    assert details["removed_intact"] is True and "broken_at" not in details
