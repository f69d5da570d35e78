"""Browser logins: a key typed once into the login page becomes a server-side session.

The cookie carries a random token; the database keeps only its SHA-256, the
key it stands for and the session's CSRF token, so every replica resumes the
same session and a copy of the table opens none. A session ends at logout,
after `idle_minutes` without a request, or as soon as its key is revoked or
expires (the key is checked on every request).
"""

import hashlib
import secrets
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import delete, update
from sqlalchemy.orm import Session, sessionmaker

from app.access.keys import KeyInfo, NotAuthenticated, key_by_id, require_active
from app.db.engine import session_scope
from app.db.tables import WebSession
from app.db.types import utc_now

SESSION_COOKIE = "lineup_session"
SEEN_RECORDED_EVERY = timedelta(seconds=30)


@dataclass(frozen=True)
class StartedSession:
    token: str
    """For the cookie; never stored."""
    csrf_token: str


@dataclass(frozen=True)
class ResumedSession:
    key: KeyInfo
    csrf_token: str


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def start_session(sessions: sessionmaker[Session], key: KeyInfo) -> StartedSession:
    token, csrf = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
    with session_scope(sessions) as session:
        session.add(WebSession(token_hash=_hash(token), key_id=key.id, csrf_token=csrf))
    return StartedSession(token=token, csrf_token=csrf)


def resume_session(
    sessions: sessionmaker[Session], token: str, *, idle_minutes: int
) -> ResumedSession:
    """The session `token` opens, its idle clock restarted; `NotAuthenticated` if none."""
    now, token_hash = utc_now(), _hash(token)
    # Read, then write in transactions of their own: in SQLite a transaction that read
    # first cannot wait for the write lock, it fails at once if another wrote meanwhile.
    with session_scope(sessions) as session:
        row = session.get(WebSession, token_hash)
    if row is None or row.last_seen_at < now - timedelta(minutes=idle_minutes):
        if row is not None:
            end_session(sessions, token)
        raise NotAuthenticated("the login session has ended; log in again", "session_ended")
    if row.last_seen_at < now - SEEN_RECORDED_EVERY:
        with session_scope(sessions) as session:
            session.execute(
                update(WebSession)
                .where(WebSession.token_hash == token_hash)
                .values(last_seen_at=now)
            )
    key_id, csrf = row.key_id, row.csrf_token
    key = key_by_id(sessions, key_id)
    if key is None:
        raise NotAuthenticated("the login session's key is gone; log in again", "session_ended")
    return ResumedSession(key=require_active(key), csrf_token=csrf)


def end_session(sessions: sessionmaker[Session], token: str) -> None:
    with session_scope(sessions) as session:
        session.execute(delete(WebSession).where(WebSession.token_hash == _hash(token)))


def end_idle_sessions(sessions: sessionmaker[Session], *, idle_minutes: int) -> int:
    """Delete sessions unused for `idle_minutes`; how many went."""
    cutoff = utc_now() - timedelta(minutes=idle_minutes)
    with session_scope(sessions) as session:
        result = session.execute(delete(WebSession).where(WebSession.last_seen_at < cutoff))
        return int(result.rowcount)  # type: ignore[attr-defined]
