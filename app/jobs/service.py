"""The jobs of one running app: its store for the admin API, its worker for the work.

At start-up, jobs that a previous process left queued or running are marked
failed ("interrupted by a restart", see `JobStore.fail_abandoned`) before
the worker starts, so the worker never picks up work from a dead process.
"""

import logging
from collections.abc import Mapping
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from app.audit.actor import Actor
from app.config import Settings
from app.gallery.service import Gallery
from app.jobs.runners import RUNNERS, JobContext, JobRunner
from app.jobs.schemas import JobOut
from app.jobs.store import JobStore
from app.jobs.worker import JobWorker

log = logging.getLogger(__name__)


class JobService:
    """Submit, list, read and cancel jobs; the worker hears of new ones at once."""

    def __init__(self, store: JobStore, worker: JobWorker) -> None:
        self.store = store
        self._worker = worker

    def submit(self, kind: str, parameters: Mapping[str, Any], *, by: Actor) -> JobOut:
        """Queue a job (`JobConflict` if one is queued or running) and wake the worker."""
        job = self.store.create(kind, parameters, by=by)
        self._worker.wake()
        return job

    def list_jobs(self, *, limit: int = 50) -> list[JobOut]:
        return self.store.list_jobs(limit=limit)

    def get(self, job_id: int) -> JobOut:
        return self.store.get(job_id)

    def cancel(self, job_id: int, *, by: Actor) -> JobOut:
        return self.store.request_cancel(job_id, by=by)

    def stop(self) -> None:
        """Stop the worker; a running job stops at its next check and is marked failed."""
        self._worker.stop()


def start_jobs(
    gallery: Gallery,
    settings: Settings,
    *,
    sessions: sessionmaker[Session],
    runners: Mapping[str, JobRunner] = RUNNERS,
) -> JobService:
    """Fail what a previous process left unfinished, then start this app's one worker."""
    store = JobStore(sessions)
    interrupted = store.fail_abandoned()
    if interrupted:
        log.warning("jobs %s were interrupted by a restart and are marked failed", interrupted)
    worker = JobWorker(
        store=store, context=JobContext(gallery=gallery, settings=settings), runners=runners
    )
    worker.start()
    return JobService(store, worker)
