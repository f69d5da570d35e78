"""The `jobs` rows: creating, reading and moving a job through its states.

A job goes queued → running → succeeded | failed | cancelled, and a finished
job never changes again. A reindex replaces the model the gallery searches
with, and a retrain makes the models a reindex switches to (and needs the
machine to itself), so at most one job of any kind is queued or running at a
time; creating a second one is a `JobConflict`. Several processes (workers,
replicas) run job workers over one database, so the check and the insert, and
every claim, happen under the gallery's database-wide lock, and each job
records the process that queued or runs it (`app.gallery.owners`).
"""

import logging
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any, Final

from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from app.audit.actor import Actor
from app.audit.trail import record
from app.db.engine import session_scope
from app.db.tables import Job
from app.db.types import utc_now
from app.gallery.changes import lock_gallery
from app.gallery.errors import JobConflict, JobFinished, JobNotFound
from app.gallery.owners import is_dead, this_process
from app.jobs.schemas import JobOut, JobStatus

log = logging.getLogger(__name__)

ACTIVE: Final = ("queued", "running")
FINISHED: Final = ("succeeded", "failed", "cancelled")
INTERRUPTED: Final = "interrupted by a restart"
# A job whose process runs on another machine is taken for abandoned once it has
# not been heard of for this long; running jobs beat every `HEARTBEAT` (see the worker).
HEARTBEAT: Final = timedelta(seconds=30)
ABANDONED_AFTER: Final = timedelta(minutes=5)


class JobStore:
    """Jobs in the database, through `session_scope`; every answer is a detached `JobOut`."""

    def __init__(self, sessions: sessionmaker[Session]) -> None:
        self._sessions = sessions

    def create(self, kind: str, parameters: Mapping[str, Any], *, by: Actor) -> JobOut:
        """Queue a job, recorded in the audit trail; `JobConflict` if another one is queued
        or running."""
        with session_scope(self._sessions) as session:
            lock_gallery(session)
            active = session.scalars(
                select(Job).where(Job.status.in_(ACTIVE)).order_by(Job.id).limit(1)
            ).first()
            if active is not None:
                raise JobConflict(
                    f"job {active.id} ({active.kind}) is {active.status}; "
                    "wait for it to finish or cancel it"
                )
            job = Job(
                kind=kind,
                status="queued",
                parameters=dict(parameters),
                message="queued",
                owner=this_process(),
            )
            session.add(job)
            session.flush()
            details = {"job_id": job.id, "kind": kind, "parameters": job.parameters}
            record(session, by, "job_start", details=details)
            return JobOut.model_validate(job)

    def list_jobs(self, *, limit: int = 50) -> list[JobOut]:
        """The newest `limit` jobs, newest first."""
        with session_scope(self._sessions) as session:
            jobs = session.scalars(select(Job).order_by(Job.id.desc()).limit(limit))
            return [JobOut.model_validate(job) for job in jobs]

    def get(self, job_id: int) -> JobOut:
        with session_scope(self._sessions) as session:
            return JobOut.model_validate(_require(session, job_id))

    def claim_next(self) -> JobOut | None:
        """Mark the oldest queued job running and return it, or None if none is queued."""
        with session_scope(self._sessions) as session:
            lock_gallery(session)  # two workers never claim one job
            job = session.scalars(
                select(Job).where(Job.status == "queued").order_by(Job.id).limit(1)
            ).first()
            if job is None:
                return None
            now = utc_now()
            job.status, job.started_at, job.heartbeat_at = "running", now, now
            job.message, job.owner = "started", this_process()
            session.flush()
            return JobOut.model_validate(job)

    def report(self, job_id: int, progress: float, message: str) -> None:
        """Record a running job's progress (clamped to 0–1) and message; also a heartbeat."""
        values = {"progress": min(1.0, max(0.0, progress)), "message": message}
        self._touch_running(job_id, **values)

    def heartbeat(self, job_id: int) -> None:
        """Record that a running job is still alive."""
        self._touch_running(job_id)

    def cancel_requested(self, job_id: int) -> bool:
        with session_scope(self._sessions) as session:
            return bool(session.scalar(select(Job.cancel_requested).where(Job.id == job_id)))

    def finish(
        self,
        job_id: int,
        *,
        status: JobStatus,
        message: str,
        result: dict[str, Any] | None = None,
        error: str | None = None,
    ) -> JobOut:
        """End a job with its outcome; a job that succeeded has progress 1. A job that has
        already ended (failed as abandoned by another process that took it for dead)
        keeps that end: a finished job never changes again."""
        if status not in FINISHED:
            raise ValueError(f"{status!r} is not a final status")
        with session_scope(self._sessions) as session:
            lock_gallery(session)
            job = _require(session, job_id)
            if job.status in FINISHED:
                log.warning(
                    "job %d had already %s; its %s end is not recorded", job_id, job.status, status
                )
                return JobOut.model_validate(job)
            now = utc_now()
            job.status, job.finished_at, job.heartbeat_at = status, now, now
            job.message, job.result, job.error = message, result, error
            if status == "succeeded":
                job.progress = 1.0
            session.flush()
            return JobOut.model_validate(job)

    def request_cancel(self, job_id: int, *, by: Actor) -> JobOut:
        """Cancel a queued job at once; ask a running one to stop at its next check.

        `JobFinished` if the job has already ended.
        """
        with session_scope(self._sessions) as session:
            lock_gallery(session)  # not between a worker's claim and its first report
            job = _require(session, job_id)
            if job.status in FINISHED:
                raise JobFinished(f"job {job_id} has already {job.status}; nothing to cancel")
            job.cancel_requested = True
            if job.status == "queued":
                job.status, job.finished_at = "cancelled", utc_now()
                job.message = "cancelled before it started"
            else:
                job.message = "cancelling"
            session.flush()
            record(session, by, "job_cancel", details={"job_id": job_id, "kind": job.kind})
            return JobOut.model_validate(job)

    def fail_abandoned(self) -> list[int]:
        """Mark failed, "interrupted by a restart", every queued or running job whose
        process is gone; return their ids.

        A job's process is gone when it ran on this machine and has exited (a
        restart, a kill), when it is unknown (rows from before jobs named their
        process), or when it runs elsewhere and has not been heard of for
        `ABANDONED_AFTER`. Its half-done work was never switched in, so failing it
        is the truth. Queued jobs of a gone process are failed too rather than run:
        they were asked for under that process's settings, and heavy work that
        starts by itself after a crash surprises an operator; re-submitting is one
        request. A live process's jobs are left to it.
        """
        with session_scope(self._sessions) as session:
            lock_gallery(session)
            now = utc_now()
            active = session.scalars(select(Job).where(Job.status.in_(ACTIVE)))
            ids = [job.id for job in active if _abandoned(job, now)]
            if ids:
                session.execute(
                    update(Job)
                    .where(Job.id.in_(ids))
                    .values(
                        status="failed", error=INTERRUPTED, message=INTERRUPTED, finished_at=now
                    )
                )
            return ids

    def _touch_running(self, job_id: int, **values: Any) -> None:
        with session_scope(self._sessions) as session:
            session.execute(
                update(Job)
                .where(Job.id == job_id, Job.status == "running")
                .values(heartbeat_at=utc_now(), **values)
            )


def _abandoned(job: Job, now: datetime) -> bool:
    if job.owner is None or is_dead(job.owner):
        return True
    return now - (job.heartbeat_at or job.created_at) > ABANDONED_AFTER


def _require(session: Session, job_id: int) -> Job:
    job = session.get(Job, job_id)
    if job is None:
        raise JobNotFound(job_id)
    return job
