"""Token buckets in the database, so a limit holds across every process and replica.

A bucket holds up to `burst` tokens and refills at `per_minute / 60` a second;
each request takes one. Taking is one conditional UPDATE (refill, check, take),
atomic on every backend, so concurrent requests never both take the last token.
"""

import time
from dataclasses import dataclass

from pydantic import BaseModel, Field
from sqlalchemy import case, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session, sessionmaker

from app.db.engine import session_scope
from app.db.tables import RateBucket


class RateLimit(BaseModel):
    """A sustained rate and the burst allowed above it."""

    model_config = {"frozen": True, "extra": "forbid"}

    per_minute: float = Field(gt=0, description="Requests a minute, sustained.")
    burst: int = Field(ge=1, description="Requests allowed at once before the rate applies.")

    @property
    def per_second(self) -> float:
        return self.per_minute / 60.0


@dataclass(frozen=True)
class Refused:
    retry_after_s: float
    """How long until a token is back."""


def take_token(
    sessions: sessionmaker[Session], bucket: str, limit: RateLimit, *, now: float | None = None
) -> Refused | None:
    """Take a token from `bucket`; None when one was there, else how long to wait."""
    now = time.time() if now is None else now
    with session_scope(sessions) as session:
        _ensure_bucket(session, bucket, limit, now)
        refilled = _refilled(limit, now)
        # A request that read the clock before another took its token must not wind the
        # bucket's clock back: the time in between would be refilled a second time.
        latest = case((RateBucket.updated < now, now), else_=RateBucket.updated)
        taken = session.execute(
            update(RateBucket)
            .where(RateBucket.name == bucket, refilled >= 1)
            .values(tokens=refilled - 1, updated=latest)
        )
        if taken.rowcount == 1:  # type: ignore[attr-defined]
            return None
        tokens = session.scalar(select(refilled).where(RateBucket.name == bucket)) or 0.0
    return Refused(retry_after_s=max(0.0, (1 - tokens) / limit.per_second))


def refund_token(sessions: sessionmaker[Session], bucket: str, limit: RateLimit) -> None:
    """Give back a token (a login that succeeded is not a failed attempt)."""
    with session_scope(sessions) as session:
        session.execute(
            update(RateBucket)
            .where(RateBucket.name == bucket)
            .values(
                tokens=case(
                    (RateBucket.tokens + 1 > limit.burst, limit.burst), else_=RateBucket.tokens + 1
                )
            )
        )


def _refilled(limit: RateLimit, now: float):  # type: ignore[no-untyped-def]
    """The bucket's tokens as of `now` (never above `burst`; a clock that went back adds none)."""
    elapsed = case((RateBucket.updated < now, now - RateBucket.updated), else_=0.0)
    refilled = RateBucket.tokens + elapsed * limit.per_second
    return case((refilled > limit.burst, float(limit.burst)), else_=refilled)


def _ensure_bucket(session: Session, bucket: str, limit: RateLimit, now: float) -> None:
    """Create the bucket full if it does not exist; a concurrent creation wins harmlessly."""
    dialect = session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    session.execute(
        insert(RateBucket)
        .values(name=bucket, tokens=float(limit.burst), updated=now)
        .on_conflict_do_nothing(index_elements=["name"])
    )
