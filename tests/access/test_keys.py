"""API keys on real databases: what is stored, how a key is refused, who made the first one."""

import hashlib
import hmac
import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import pytest
from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from app.access.keys import (
    KeyNameTaken,
    KeyNotFound,
    KeyRefused,
    NewKey,
    NotAuthenticated,
    authenticate,
    create_first_admin_key,
    create_key,
    list_keys,
    revoke_key,
)
from app.access.roles import Role
from app.audit.actor import SYSTEM
from app.audit.verify import verify_trail
from app.db.engine import session_scope
from app.db.tables import ApiKey, AuditEvent
from app.db.types import utc_now

Sessions = sessionmaker[Session]


def stored_text(sessions: Sessions, table: type[ApiKey] | type[AuditEvent]) -> str:
    """Every value of every row of `table`, as one text to search."""
    with session_scope(sessions) as session:
        rows = session.scalars(select(table)).all()
        columns = [column.key for column in table.__mapper__.column_attrs]
        return "\n".join(str(getattr(row, column)) for row in rows for column in columns)


def trail(sessions: Sessions) -> list[AuditEvent]:
    with session_scope(sessions) as session:
        return list(session.scalars(select(AuditEvent).order_by(AuditEvent.id)))


def refusal(sessions: Sessions, presented: str) -> str:
    with pytest.raises(NotAuthenticated) as refused:
        authenticate(sessions, presented)
    return refused.value.code


def test_only_the_hash_of_a_key_is_stored(sessions: Sessions) -> None:
    made = create_key(sessions, name="kim", role=Role.enroller, by=SYSTEM)
    prefix, secret = made.key.removeprefix("lk_").split("_", 1)
    assert (made.info.prefix, len(secret)) == (prefix, 43)

    with session_scope(sessions) as session:
        row = session.scalars(select(ApiKey)).one()
        assert row.secret_hash == hashlib.sha256(made.key.encode()).hexdigest()
    for table in (ApiKey, AuditEvent):
        text = stored_text(sessions, table)
        assert made.key not in text and secret not in text
    assert authenticate(sessions, made.key) == made.info


def test_a_key_is_found_by_its_whole_secret_not_its_prefix(sessions: Sessions) -> None:
    made = create_key(sessions, name="kim", role=Role.viewer, by=SYSTEM)
    last = made.key[-1]
    altered = made.key[:-1] + ("A" if last != "A" else "B")
    assert refusal(sessions, altered) == "key_unknown"
    assert refusal(sessions, made.key + "x") == "key_malformed"
    assert refusal(sessions, made.key.upper()) == "key_malformed"  # the prefix is hex
    assert refusal(sessions, "") == "key_malformed"
    assert refusal(sessions, "lk_0123abcd_" + "a" * 43) == "key_unknown"


def test_an_unknown_prefix_is_compared_in_constant_time_like_a_known_one(
    sessions: Sessions, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Timing must not tell an unknown prefix from a wrong secret: both cost one
    `hmac.compare_digest` of two SHA-256 hex digests."""
    made = create_key(sessions, name="kim", role=Role.viewer, by=SYSTEM)
    compared: list[tuple[str, str]] = []
    compare = hmac.compare_digest

    def spy(a: str, b: str) -> bool:
        compared.append((a, b))
        return compare(a, b)

    monkeypatch.setattr(hmac, "compare_digest", spy)  # as app.access.keys calls it
    unknown = "lk_0123abcd_" + "a" * 43
    wrong_secret = f"lk_{made.info.prefix}_" + "b" * 43
    for presented in (unknown, wrong_secret):
        compared.clear()
        assert refusal(sessions, presented) == "key_unknown"
        assert len(compared) == 1
        stored, sent = compared[0]
        assert sent == hashlib.sha256(presented.encode()).hexdigest()
        assert len(stored) == len(sent) == 64


def test_revoked_and_expired_keys_are_refused_with_their_reason(sessions: Sessions) -> None:
    revoked = create_key(sessions, name="gone", role=Role.admin, by=SYSTEM)
    expired = create_key(sessions, name="late", role=Role.viewer, by=SYSTEM, expires_in_days=1)
    both = create_key(sessions, name="both", role=Role.viewer, by=SYSTEM, expires_in_days=1)
    assert authenticate(sessions, expired.key).expires_at is not None
    revoke_key(sessions, "gone", by=SYSTEM)
    revoke_key(sessions, "both", by=SYSTEM)
    with session_scope(sessions) as session:
        session.execute(
            update(ApiKey)
            .where(ApiKey.name.in_(["late", "both"]))
            .values(expires_at=utc_now() - timedelta(seconds=1))
        )

    assert refusal(sessions, revoked.key) == "key_revoked"
    assert refusal(sessions, expired.key) == "key_expired"
    assert refusal(sessions, both.key) == "key_revoked"
    listed = {info.name: info.active for info in list_keys(sessions)}
    assert listed == {"gone": False, "late": False, "both": False}


def test_revoking_is_recorded_once_and_an_unknown_name_is_refused(sessions: Sessions) -> None:
    create_key(sessions, name="kim", role=Role.viewer, by=SYSTEM)
    first = revoke_key(sessions, "kim", by=SYSTEM)
    again = revoke_key(sessions, "kim", by=SYSTEM)
    assert first.revoked_at is not None and again.revoked_at == first.revoked_at
    assert [event.action for event in trail(sessions)] == ["key_create", "key_revoke"]
    with pytest.raises(KeyNotFound):
        revoke_key(sessions, "nobody", by=SYSTEM)


@pytest.mark.parametrize(
    "name",
    ["", "-kim", ".kim", "kim smith", "kim/1", "kïm", "kim\n", "k" * 65, "kim;drop", "=kim"],
)
def test_key_names_are_validated(sessions: Sessions, name: str) -> None:
    with pytest.raises(KeyRefused) as refused:
        create_key(sessions, name=name, role=Role.viewer, by=SYSTEM)
    assert refused.value.code == "key_refused"
    assert list_keys(sessions) == [] and trail(sessions) == []


def test_names_are_unique_and_the_expiry_is_bounded(sessions: Sessions) -> None:
    for name in ("kim", "k" * 64, "kim.smith@unit-7", "7_up"):
        create_key(sessions, name=name, role=Role.viewer, by=SYSTEM)
    with pytest.raises(KeyNameTaken):
        create_key(sessions, name="kim", role=Role.admin, by=SYSTEM)
    for days in (0, -1, 3651):
        with pytest.raises(KeyRefused):
            create_key(sessions, name="later", role=Role.viewer, by=SYSTEM, expires_in_days=days)
    assert len(list_keys(sessions)) == 4
    assert [event.action for event in trail(sessions)] == ["key_create"] * 4


def test_the_first_admin_key_is_made_once_by_concurrent_starts(sessions: Sessions) -> None:
    """Several processes starting at once on a fresh gallery make one key between them."""
    starters = 8
    barrier = threading.Barrier(starters)

    def start() -> NewKey | None:
        barrier.wait()
        return create_first_admin_key(sessions, by=SYSTEM)

    with ThreadPoolExecutor(max_workers=starters) as pool:
        made = [key for key in pool.map(lambda _: start(), range(starters)) if key is not None]

    assert len(made) == 1
    assert (made[0].info.name, made[0].info.role) == ("admin", Role.admin)
    assert [info.name for info in list_keys(sessions)] == ["admin"]
    assert [event.action for event in trail(sessions)] == ["key_create"]
    with session_scope(sessions) as session:
        assert verify_trail(session).intact
    assert create_first_admin_key(sessions, by=SYSTEM) is None
