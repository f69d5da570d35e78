"""Token buckets on real databases: the arithmetic by hand, and takers racing for tokens."""

import math
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
from sqlalchemy.orm import Session, sessionmaker

from app.access.rate_limits import RateLimit, take_token

Sessions = sessionmaker[Session]
ONE_A_SECOND = RateLimit(per_minute=60, burst=3)


def granted(sessions: Sessions, now: float, limit: RateLimit = ONE_A_SECOND) -> bool:
    return take_token(sessions, "key:1", limit, now=now) is None


def test_a_bucket_gives_its_burst_then_one_token_a_second(sessions: Sessions) -> None:
    assert [granted(sessions, 1000.0) for _ in range(4)] == [True, True, True, False]
    refused = take_token(sessions, "key:1", ONE_A_SECOND, now=1000.25)
    assert refused is not None and refused.retry_after_s == pytest.approx(0.75)
    assert granted(sessions, 1001.0)
    assert not granted(sessions, 1001.5)
    # A long pause fills the bucket to its burst, never beyond.
    assert [granted(sessions, 2000.0) for _ in range(4)] == [True, True, True, False]
    # Other buckets are apart.
    assert take_token(sessions, "key:2", ONE_A_SECOND, now=2000.0) is None


def test_a_clock_that_goes_back_adds_no_tokens(sessions: Sessions) -> None:
    assert [granted(sessions, 1000.0) for _ in range(3)] == [True, True, True]
    assert not granted(sessions, 900.0)
    assert not granted(sessions, 1000.5)
    assert granted(sessions, 1001.0)


def test_a_taker_that_read_the_clock_early_does_not_make_time_count_twice(
    sessions: Sessions,
) -> None:
    """Concurrent requests read the clock, then queue for the bucket, so one can take its
    token with an older `now` than the one before it. That must not wind the bucket's
    clock back: the time in between would be refilled a second time."""
    limit = RateLimit(per_minute=60, burst=2)
    takes = [0.0, 0.0, 2.0, 1.5, 2.0, 2.5]  # 1.5 read the clock before 2.0 took its token
    grants = sum(granted(sessions, now, limit) for now in takes)
    assert grants <= limit.burst + 2.5 * limit.per_second  # 4.5: the burst and 2.5 s of refill


def test_racing_takers_never_get_more_than_the_burst_and_the_refill(sessions: Sessions) -> None:
    """Threads (each its own connection) hammer one bucket for a while: grants never
    exceed the burst plus what the rate refilled meanwhile."""
    limit = RateLimit(per_minute=600, burst=5)  # 10 tokens a second
    takers, duration_s = 8, 1.5
    barrier = threading.Barrier(takers)
    started: list[float] = []

    def hammer() -> int:
        barrier.wait()
        started.append(time.time())
        deadline = time.monotonic() + duration_s
        count = 0
        while time.monotonic() < deadline:
            count += take_token(sessions, "key:hot", limit) is None
        return count

    with ThreadPoolExecutor(max_workers=takers) as pool:
        grants = sum(pool.map(lambda _: hammer(), range(takers)))
    elapsed = time.time() - min(started)

    assert limit.burst <= grants <= limit.burst + math.floor(elapsed * limit.per_second)
