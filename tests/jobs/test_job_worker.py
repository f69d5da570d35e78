"""The worker runs queued jobs on its own thread, in order, and records how each ended.

The runners here are small functions standing in for the registry's (a real
reindex is exercised in tests/api/test_admin_api.py); the store, its SQLite
file and the thread are real.
"""

import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from sqlalchemy.orm import Session, sessionmaker

from app.db.engine import session_scope
from app.db.tables import Job
from app.gallery.errors import OperationCancelled
from app.jobs.runners import JobRunner
from app.jobs.schemas import JobOut
from app.jobs.store import JobStore
from app.jobs.worker import SHUTDOWN, JobWorker

from access_support import BY

Progress = Callable[[float, str], None]
Cancelled = Callable[[], bool]


def wait_until(
    store: JobStore, job_id: int, condition: Callable[[JobOut], bool], timeout: float = 30.0
) -> JobOut:
    """The job as soon as `condition` holds for it; fails after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while not condition(job := store.get(job_id)):
        assert time.monotonic() < deadline, f"job {job_id} never got there: {job}"
        time.sleep(0.02)
    return job


def wait_for(store: JobStore, job_id: int, *statuses: str) -> JobOut:
    return wait_until(store, job_id, lambda job: job.status in statuses)


@pytest.fixture
def runs() -> list[tuple[int, str]]:
    """(parameter n, thread name) of every run, in order."""
    return []


@pytest.fixture
def gate() -> threading.Event:
    """What a "gated" run waits for before its first check."""
    return threading.Event()


@pytest.fixture
def runners(runs: list[tuple[int, str]], gate: threading.Event) -> dict[str, JobRunner]:
    """One kind, "reindex", whose parameters say what to do: count, fail, wait for a cancel,
    or wait for the gate to open and then for a cancel."""

    def runner(
        _: Any, parameters: dict[str, Any], progress: Progress, cancelled: Cancelled
    ) -> dict[str, Any]:
        if parameters["do"] == "fail":
            raise RuntimeError("the disk is full")
        if parameters["do"] in ("wait", "gated"):
            if parameters["do"] == "gated":
                assert gate.wait(timeout=30), "the test never opened the gate"
            while not cancelled():
                progress(0.1, "waiting")
                time.sleep(0.01)
            raise OperationCancelled("stopped")
        runs.append((parameters["n"], threading.current_thread().name))
        progress(0.5, "half way")
        return {"n": parameters["n"]}

    return {"reindex": runner}


@pytest.fixture
def worker(store: JobStore, runners: dict[str, JobRunner]) -> Iterator[JobWorker]:
    worker = JobWorker(store=store, context=None, runners=runners, poll_seconds=0.05)  # type: ignore[arg-type]
    yield worker
    worker.stop(timeout=10)


def test_queued_jobs_run_in_order_on_the_worker_thread(
    store: JobStore, sessions: sessionmaker[Session], worker: JobWorker, runs: list[tuple[int, str]]
) -> None:
    with session_scope(sessions) as session:
        session.add_all(
            [
                Job(kind="reindex", status="queued", parameters={"do": "count", "n": n})
                for n in (1, 2)
            ]
        )
    worker.start()
    first, second = (wait_for(store, job_id, "succeeded") for job_id in (1, 2))
    assert runs == [(1, "lineup-jobs"), (2, "lineup-jobs")]
    assert first.result == {"n": 1} and second.result == {"n": 2}
    assert first.progress == 1.0 and first.heartbeat_at is not None
    assert first.finished_at is not None and second.started_at is not None
    assert first.finished_at <= second.started_at


def test_a_submitted_job_is_picked_up(store: JobStore, worker: JobWorker) -> None:
    worker.start()
    job = store.create("reindex", {"do": "count", "n": 7}, by=BY)
    worker.wake()
    assert wait_for(store, job.id, "succeeded").result == {"n": 7}


def test_a_failing_runner_fails_its_job_with_the_reason(store: JobStore, worker: JobWorker) -> None:
    worker.start()
    failed = store.create("reindex", {"do": "fail"}, by=BY)
    assert wait_for(store, failed.id, "failed").error == "the disk is full"
    unknown = store.create("retrain", {}, by=BY)
    assert wait_for(store, unknown.id, "failed").error == "no runner for jobs of kind 'retrain'"
    after = store.create("reindex", {"do": "count", "n": 1}, by=BY)
    assert wait_for(store, after.id, "succeeded").status == "succeeded"


def test_a_cancelled_job_stops_at_its_next_check(store: JobStore, worker: JobWorker) -> None:
    worker.start()
    job = store.create("reindex", {"do": "wait"}, by=BY)
    # Not merely "running": the job is claimed before the runner's first check, and a
    # cancel landing in between stops it before it reports anything.
    reporting = wait_until(store, job.id, lambda job: job.message == "waiting")
    assert reporting.progress == pytest.approx(0.1)
    assert store.request_cancel(reporting.id, by=BY).cancel_requested
    cancelled = wait_for(store, job.id, "cancelled")
    assert cancelled.error is None and cancelled.progress == pytest.approx(0.1)


def test_a_job_cancelled_before_its_first_check_stops_at_that_check(
    store: JobStore, worker: JobWorker, gate: threading.Event
) -> None:
    worker.start()
    job = store.create("reindex", {"do": "gated"}, by=BY)
    running = wait_for(store, job.id, "running")  # claimed; the runner waits at the gate
    assert store.request_cancel(running.id, by=BY).message == "cancelling"
    gate.set()
    cancelled = wait_for(store, job.id, "cancelled")
    assert (cancelled.error, cancelled.progress, cancelled.message) == (None, 0.0, "cancelled")


def test_stopping_the_worker_interrupts_the_running_job(store: JobStore, worker: JobWorker) -> None:
    worker.start()
    job = store.create("reindex", {"do": "wait"}, by=BY)
    wait_for(store, job.id, "running")
    worker.stop(timeout=10)
    stopped = store.get(job.id)
    assert (stopped.status, stopped.error) == ("failed", SHUTDOWN)
