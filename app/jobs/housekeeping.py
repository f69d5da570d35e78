"""The purge: expired subjects, audit records past retention and idle login sessions go.

`lineup purge` runs it once; the service runs it on a thread of its own every
`purge_interval_hours`, the first time shortly after it starts. Several
processes over one database may each run it, even at once, and nothing is
removed or recorded twice: each subject's deletion takes the gallery's lock and
looks again, and trimming takes the trail's. Beyond that, a process whose turn
comes while another is purging skips its turn (an advisory lock in PostgreSQL,
a lock file beside an SQLite database), so the work is not done twice over.
"""

import fcntl
import logging
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

from sqlalchemy import Engine, text
from sqlalchemy.orm import Session, sessionmaker

from app.access.web_sessions import end_idle_sessions
from app.audit.actor import Actor
from app.audit.retention import trim_trail
from app.config import Settings
from app.db.engine import session_scope
from app.db.types import utc_now
from app.gallery.service import Gallery

log = logging.getLogger(__name__)

FIRST_RUN_AFTER_S = 60.0
"""After start-up, so the purge does not compete with loading the model; sooner when the
interval is shorter."""
_POSTGRES_LOCK_KEY = 0x6C696E657570_01  # any constant shared by every Lineup process


@dataclass(frozen=True)
class PurgeReport:
    """What one purge removed."""

    subjects: list[int]
    """The ids of the subjects deleted, each recorded in the audit trail as `subject_purge`."""
    audit_records: int
    web_sessions: int


def purge(
    gallery: Gallery, settings: Settings, *, sessions: sessionmaker[Session], by: Actor
) -> PurgeReport:
    """Delete expired subjects, audit records older than the retention period and login
    sessions idle past their timeout."""
    subjects = gallery.purge_expired(by=by)
    before = utc_now() - timedelta(days=settings.audit_retention_days)
    with session_scope(sessions) as session:
        audit_records = trim_trail(session, before=before, by=by)
    web_sessions = end_idle_sessions(sessions, idle_minutes=settings.session_idle_minutes)
    return PurgeReport(subjects=subjects, audit_records=audit_records, web_sessions=web_sessions)


class Housekeeper:
    """A thread that runs `work` every `interval_s` seconds, first after `first_after_s`.

    A failed run is logged and the next one comes at its time: the thread only
    ends when `stop` is called.
    """

    def __init__(
        self, work: Callable[[], object], *, interval_s: float, first_after_s: float
    ) -> None:
        self._work = work
        self._interval_s = interval_s
        self._first_after_s = first_after_s
        self._stopping = threading.Event()
        self._thread = threading.Thread(
            target=self._run_forever, name="lineup-housekeeping", daemon=True
        )

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float = 60.0) -> None:
        """Wait for a run in progress to end; none starts after this."""
        self._stopping.set()
        if self._thread.is_alive():
            self._thread.join(timeout)
        if self._thread.is_alive():
            log.warning("the purge did not stop within %.0f s", timeout)

    def _run_forever(self) -> None:
        wait = self._first_after_s
        while not self._stopping.wait(wait):
            try:
                self._work()
            except Exception:
                log.exception("the purge failed; it runs again in %.0f s", self._interval_s)
            wait = self._interval_s


def start_housekeeping(
    gallery: Gallery,
    settings: Settings,
    *,
    engine: Engine,
    sessions: sessionmaker[Session],
    by: Actor,
) -> Housekeeper:
    """Start the service's periodic purge."""

    def turn() -> None:
        with _purge_turn(engine) as ours:
            if not ours:
                log.info("another process is purging; skipping this turn")
                return
            report = purge(gallery, settings, sessions=sessions, by=by)
        if report.subjects or report.audit_records or report.web_sessions:
            log.info(
                "purge: %d expired subjects, %d audit records, %d idle login sessions",
                len(report.subjects),
                report.audit_records,
                report.web_sessions,
            )

    interval_s = settings.purge_interval_hours * 3600
    housekeeper = Housekeeper(
        turn, interval_s=interval_s, first_after_s=min(FIRST_RUN_AFTER_S, interval_s)
    )
    housekeeper.start()
    return housekeeper


@contextmanager
def _purge_turn(engine: Engine) -> Iterator[bool]:
    """Whether no other process is purging this database now; if so, hold it off meanwhile."""
    if engine.dialect.name == "postgresql":
        with engine.connect() as connection:
            taken = connection.execute(
                text("SELECT pg_try_advisory_lock(:key)"), {"key": _POSTGRES_LOCK_KEY}
            ).scalar_one()
            connection.commit()  # a session lock; no transaction stays open meanwhile
            try:
                yield bool(taken)
            finally:
                if taken:
                    connection.execute(
                        text("SELECT pg_advisory_unlock(:key)"), {"key": _POSTGRES_LOCK_KEY}
                    )
                    connection.commit()
        return
    database = engine.url.database
    if not database or database == ":memory:" or database.startswith("file:"):
        yield True
        return
    with open(Path(f"{database}.purge-lock"), "a+b") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
            return
        try:
            yield True
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
