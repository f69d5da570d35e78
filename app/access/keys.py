"""API keys: made once, shown once, stored as a hash, found by their public prefix.

A key reads `lk_<prefix>_<secret>`: the prefix (8 hex characters) finds the
row, the secret carries 256 random bits. Only the SHA-256 of the whole key is
stored, and the presented key's hash is compared in constant time, so neither
the table nor the timing of a refusal gives a key away.
"""

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from app.access.roles import Role
from app.audit.actor import Actor
from app.audit.trail import lock_trail, record
from app.db.engine import session_scope
from app.db.tables import ApiKey
from app.db.types import utc_now

KEY_FORMAT = re.compile(r"lk_([0-9a-f]{8})_([A-Za-z0-9_-]{43})")
KEY_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._@-]{0,63}")
FIRST_ADMIN = "admin"


class KeyRefused(Exception):
    """A key that cannot be created or revoked as asked (a name taken, unknown or invalid)."""

    code = "key_refused"


class KeyNotFound(KeyRefused):
    code = "key_not_found"


class KeyNameTaken(KeyRefused):
    code = "key_name_taken"


class NotAuthenticated(Exception):
    """No usable key: missing, malformed, unknown, expired or revoked (`code` says which)."""

    def __init__(self, detail: str, code: str) -> None:
        super().__init__(detail)
        self.code = code


@dataclass(frozen=True)
class KeyInfo:
    """What may be shown of a key: everything but its secret."""

    id: int
    name: str
    role: Role
    prefix: str
    created_at: datetime
    created_by: str
    expires_at: datetime | None
    revoked_at: datetime | None
    last_used_at: datetime | None

    @property
    def active(self) -> bool:
        return self.revoked_at is None and not _expired(self.expires_at)


@dataclass(frozen=True)
class NewKey:
    info: KeyInfo
    key: str
    """The key itself: shown to its holder once, never stored."""


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def create_key(
    sessions: sessionmaker[Session],
    *,
    name: str,
    role: Role,
    by: Actor,
    expires_in_days: int | None = None,
) -> NewKey:
    """A new key named `name` (unique, letters, digits, `._@-`), recorded in the trail."""
    if not KEY_NAME.fullmatch(name):
        raise KeyRefused(
            f"key name {name!r} must be 1-64 letters, digits or ._@- and start with a letter "
            "or digit"
        )
    if expires_in_days is not None and not 1 <= expires_in_days <= 3650:
        raise KeyRefused("expires_in_days must be between 1 and 3650")
    prefix, key = _new_secret()
    expires = utc_now() + timedelta(days=expires_in_days) if expires_in_days else None
    try:
        with session_scope(sessions) as session:
            lock_trail(session)  # a write first, so SQLite's write lock is waited for
            if session.scalar(select(ApiKey.id).where(ApiKey.name == name)) is not None:
                raise KeyNameTaken(f"a key named {name!r} exists; choose another name")
            row = ApiKey(
                name=name,
                role=role.value,
                prefix=prefix,
                secret_hash=hash_key(key),
                created_by=by.key_name,
                expires_at=expires,
            )
            session.add(row)
            session.flush()
            record(session, by, "key_create", details=_described(row))
            info = _info(row)
    except IntegrityError as error:  # another process took the name between check and insert
        raise KeyNameTaken(f"a key named {name!r} exists; choose another name") from error
    return NewKey(info=info, key=key)


def create_first_admin_key(sessions: sessionmaker[Session], *, by: Actor) -> NewKey | None:
    """The admin key of a fresh gallery, or None when it has keys already. Two processes
    starting at once on one fresh gallery make one key: the name is unique."""
    with session_scope(sessions) as session:
        if session.scalar(select(ApiKey.id).limit(1)) is not None:
            return None
    try:
        return create_key(sessions, name=FIRST_ADMIN, role=Role.admin, by=by)
    except KeyRefused:
        return None


def list_keys(sessions: sessionmaker[Session]) -> list[KeyInfo]:
    with session_scope(sessions) as session:
        return [_info(row) for row in session.scalars(select(ApiKey).order_by(ApiKey.id))]


def revoke_key(sessions: sessionmaker[Session], name: str, *, by: Actor) -> KeyInfo:
    """Revoke key `name` at once; its sessions end with it. Revoking twice changes nothing."""
    with session_scope(sessions) as session:
        lock_trail(session)
        row = session.scalars(select(ApiKey).where(ApiKey.name == name)).one_or_none()
        if row is None:
            raise KeyNotFound(f"no key named {name!r}")
        if row.revoked_at is None:
            row.revoked_at = utc_now()
            session.flush()
            record(session, by, "key_revoke", details=_described(row))
        return _info(row)


def authenticate(sessions: sessionmaker[Session], presented: str) -> KeyInfo:
    """The active key `presented` is; `NotAuthenticated` with the reason otherwise."""
    match = KEY_FORMAT.fullmatch(presented)
    if match is None:
        raise NotAuthenticated("the API key is malformed", "key_malformed")
    with session_scope(sessions) as session:
        row = session.scalars(select(ApiKey).where(ApiKey.prefix == match[1])).one_or_none()
        stored = row.secret_hash if row is not None else hash_key("")
        if not hmac.compare_digest(stored, hash_key(presented)) or row is None:
            raise NotAuthenticated("the API key is not known", "key_unknown")
        return require_active(_info(row))


def key_by_id(sessions: sessionmaker[Session], key_id: int) -> KeyInfo | None:
    with session_scope(sessions) as session:
        row = session.get(ApiKey, key_id)
        return None if row is None else _info(row)


def require_active(info: KeyInfo) -> KeyInfo:
    if info.revoked_at is not None:
        raise NotAuthenticated(f"the API key {info.name!r} is revoked", "key_revoked")
    if _expired(info.expires_at):
        raise NotAuthenticated(f"the API key {info.name!r} has expired", "key_expired")
    return info


def _new_secret() -> tuple[str, str]:
    prefix = secrets.token_hex(4)
    return prefix, f"lk_{prefix}_{secrets.token_urlsafe(32)}"


def _expired(expires_at: datetime | None) -> bool:
    return expires_at is not None and expires_at <= utc_now()


def _described(row: ApiKey) -> dict[str, object]:
    return {
        "key": row.name,
        "key_role": row.role,
        "prefix": row.prefix,
        "expires_at": row.expires_at.isoformat() if row.expires_at else None,
    }


def _info(row: ApiKey) -> KeyInfo:
    return KeyInfo(
        id=row.id,
        name=row.name,
        role=Role(row.role),
        prefix=row.prefix,
        created_at=row.created_at,
        created_by=row.created_by,
        expires_at=row.expires_at,
        revoked_at=row.revoked_at,
        last_used_at=row.last_used_at,
    )


USE_RECORDED_EVERY = timedelta(minutes=1)


def note_use(sessions: sessionmaker[Session], key_id: int) -> None:
    """Set the key's `last_used_at`, at most once a minute (not one write per request)."""
    now = utc_now()
    with session_scope(sessions) as session:
        session.execute(
            update(ApiKey)
            .where(
                ApiKey.id == key_id,
                or_(ApiKey.last_used_at.is_(None), ApiKey.last_used_at < now - USE_RECORDED_EVERY),
            )
            .values(last_used_at=now)
        )
