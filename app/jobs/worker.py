"""The one thread per app that runs queued jobs, oldest first, one at a time.

Jobs replace the model under a live gallery, so they run outside the request
path and never two at once (in any process: the store claims under the
database's lock). The runner reports progress through the store and is asked
between steps whether to stop: because its job was cancelled, or because the
app is shutting down. A heartbeat goes on beside it through long steps, so
other processes can tell a slow job from one whose process died; and now and
then the worker fails jobs whose process is gone (a replica on another machine).
"""

import logging
import threading
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager

from app.gallery.errors import OperationCancelled
from app.jobs.runners import JobContext, JobRunner
from app.jobs.schemas import JobOut
from app.jobs.store import HEARTBEAT, JobStore

log = logging.getLogger(__name__)

SHUTDOWN = "interrupted by a shutdown"
# How often an idle worker looks for jobs that other, dead processes left.
_ABANDONED_CHECK_S = 60.0


class JobWorker:
    """Polls the store for queued jobs (or is woken when one is submitted) and runs them."""

    def __init__(
        self,
        *,
        store: JobStore,
        context: JobContext,
        runners: Mapping[str, JobRunner],
        poll_seconds: float = 2.0,
    ) -> None:
        self._store = store
        self._context = context
        self._runners = runners
        self._poll_seconds = poll_seconds
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run_forever, name="lineup-jobs", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def wake(self) -> None:
        """Look at the queue now rather than at the next poll."""
        self._wake.set()

    def stop(self, timeout: float = 60.0) -> None:
        """Ask the running job to stop at its next check, and wait for the thread to end.

        A job still inside a long step after `timeout` is left running; the
        next start-up marks it failed.
        """
        self._stopping.set()
        self._wake.set()
        if self._thread.is_alive():
            self._thread.join(timeout)
        if self._thread.is_alive():
            log.warning("the job worker did not stop within %.0f s", timeout)

    def _run_forever(self) -> None:
        checked = time.monotonic()
        while not self._stopping.is_set():
            self._wake.clear()  # before looking, so a wake-up during the look is not lost
            try:
                if time.monotonic() - checked > _ABANDONED_CHECK_S:
                    checked = time.monotonic()
                    if failed := self._store.fail_abandoned():
                        log.warning("jobs %s were abandoned by their processes", failed)
                job = self._store.claim_next()
                if job is not None:
                    self._run(job)
                    continue
            except Exception:
                log.exception("the job worker could not read or update the jobs table")
            self._wake.wait(self._poll_seconds)

    def _run(self, job: JobOut) -> None:
        runner = self._runners.get(job.kind)
        if runner is None:
            error = f"no runner for jobs of kind {job.kind!r}"
            self._store.finish(job.id, status="failed", message=error, error=error)
            return
        log.info("job %d (%s) started", job.id, job.kind)
        try:
            with self._beating(job.id):
                result = runner(
                    self._context,
                    job.parameters,
                    lambda fraction, message: self._store.report(job.id, fraction, message),
                    lambda: self._should_stop(job.id),
                )
        except OperationCancelled:
            self._end_cancelled(job)
        except Exception as error:
            log.exception("job %d (%s) failed", job.id, job.kind)
            detail = str(error) or type(error).__name__
            self._store.finish(job.id, status="failed", message="failed", error=detail)
        else:
            self._store.finish(job.id, status="succeeded", message="done", result=result)
            log.info("job %d (%s) succeeded", job.id, job.kind)

    @contextmanager
    def _beating(self, job_id: int) -> Iterator[None]:
        """Touch the job's heartbeat every `HEARTBEAT` while the block runs."""
        done = threading.Event()

        def beat() -> None:
            while not done.wait(HEARTBEAT.total_seconds()):
                try:
                    self._store.heartbeat(job_id)
                except Exception:
                    log.exception("job %d: the heartbeat could not be written", job_id)

        beater = threading.Thread(target=beat, name=f"lineup-job-{job_id}-heartbeat", daemon=True)
        beater.start()
        try:
            yield
        finally:
            done.set()
            beater.join()

    def _should_stop(self, job_id: int) -> bool:
        """The runner's question between steps; answering it is a heartbeat too."""
        self._store.heartbeat(job_id)
        return self._stopping.is_set() or self._store.cancel_requested(job_id)

    def _end_cancelled(self, job: JobOut) -> None:
        if self._store.cancel_requested(job.id):
            self._store.finish(job.id, status="cancelled", message="cancelled")
            log.info("job %d (%s) cancelled", job.id, job.kind)
        else:
            self._store.finish(job.id, status="failed", message=SHUTDOWN, error=SHUTDOWN)
            log.warning("job %d (%s) %s", job.id, job.kind, SHUTDOWN)
