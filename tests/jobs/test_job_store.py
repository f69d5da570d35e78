"""Jobs move queued → running → finished, one at a time, and never move back."""

from datetime import timedelta
from functools import partial

import pytest
from sqlalchemy.orm import Session, sessionmaker

from app.db.engine import session_scope
from app.db.tables import Job
from app.db.types import utc_now
from app.gallery.errors import JobConflict, JobFinished, JobNotFound
from app.gallery.owners import this_process
from app.jobs.store import ABANDONED_AFTER, INTERRUPTED, JobStore

from access_support import BY


def test_a_job_goes_from_queued_to_running_to_succeeded(store: JobStore) -> None:
    queued = store.create("reindex", {"backbone": "dlib-resnet"}, by=BY)
    assert (queued.status, queued.progress, queued.cancel_requested) == ("queued", 0.0, False)
    assert queued.parameters == {"backbone": "dlib-resnet"}
    assert queued.created_at.tzinfo is not None
    assert queued.started_at is queued.heartbeat_at is queued.finished_at is None

    running = store.claim_next()
    assert running is not None and running.id == queued.id
    assert running.status == "running" and running.started_at == running.heartbeat_at
    assert store.claim_next() is None

    store.report(running.id, 0.25, "embedded 8 of 32 faces")
    reported = store.get(running.id)
    assert (reported.progress, reported.message) == (0.25, "embedded 8 of 32 faces")
    assert reported.heartbeat_at is not None and reported.heartbeat_at >= running.started_at

    done = store.finish(running.id, status="succeeded", message="done", result={"faces": 32})
    assert (done.status, done.progress, done.result, done.error) == (
        "succeeded",
        1.0,
        {"faces": 32},
        None,
    )
    assert done.finished_at is not None and done.finished_at >= done.started_at


def test_progress_is_clamped_and_only_a_running_job_reports(store: JobStore) -> None:
    job = store.create("reindex", {}, by=BY)
    store.report(job.id, 0.5, "too early")
    assert store.get(job.id).progress == 0.0 and store.get(job.id).heartbeat_at is None
    store.claim_next()
    store.report(job.id, 1.7, "past the end")
    assert store.get(job.id).progress == 1.0
    store.report(job.id, -0.2, "before the start")
    assert store.get(job.id).progress == 0.0
    store.finish(job.id, status="failed", message="failed", error="boom")
    store.report(job.id, 0.9, "after the end")
    assert store.get(job.id).message == "failed"


def test_only_one_job_may_be_queued_or_running(store: JobStore) -> None:
    first = store.create("reindex", {}, by=BY)
    with pytest.raises(JobConflict) as conflict:
        store.create("reindex", {}, by=BY)
    assert conflict.value.code == "job_conflict" and f"job {first.id}" in str(conflict.value)
    store.claim_next()
    with pytest.raises(JobConflict):
        store.create("retrain", {}, by=BY)
    store.finish(first.id, status="failed", message="failed", error="boom")
    assert store.create("reindex", {}, by=BY).status == "queued"


def test_the_oldest_queued_job_is_claimed_first(
    store: JobStore, sessions: sessionmaker[Session]
) -> None:
    with session_scope(sessions) as session:  # two queued rows, as a crash could leave them
        session.add_all([Job(kind="reindex", status="queued", parameters={"n": n}) for n in (1, 2)])
    claimed = [store.claim_next(), store.claim_next(), store.claim_next()]
    assert [job.parameters["n"] if job else None for job in claimed] == [1, 2, None]


def test_cancelling_a_queued_job_ends_it_at_once(store: JobStore) -> None:
    job = store.create("reindex", {}, by=BY)
    cancelled = store.request_cancel(job.id, by=BY)
    assert (cancelled.status, cancelled.cancel_requested) == ("cancelled", True)
    assert cancelled.finished_at is not None
    assert store.claim_next() is None


def test_cancelling_a_running_job_asks_it_to_stop(store: JobStore) -> None:
    job = store.create("reindex", {}, by=BY)
    store.claim_next()
    assert not store.cancel_requested(job.id)
    asked = store.request_cancel(job.id, by=BY)
    assert (asked.status, asked.cancel_requested, asked.message) == ("running", True, "cancelling")
    assert store.cancel_requested(job.id)
    store.finish(job.id, status="cancelled", message="cancelled")
    with pytest.raises(JobFinished) as finished:
        store.request_cancel(job.id, by=BY)
    assert finished.value.code == "job_finished"


def test_unknown_jobs_and_bad_final_states_are_refused(store: JobStore) -> None:
    for action in (store.get, partial(store.request_cancel, by=BY)):
        with pytest.raises(JobNotFound) as missing:
            action(404)
        assert missing.value.code == "job_not_found"
    job = store.create("reindex", {}, by=BY)
    with pytest.raises(ValueError, match="not a final status"):
        store.finish(job.id, status="running", message="?")


def test_jobs_are_listed_newest_first(store: JobStore) -> None:
    ids = []
    for _ in range(3):
        job = store.create("reindex", {}, by=BY)
        store.finish(job.id, status="failed", message="failed", error="boom")
        ids.append(job.id)
    assert [job.id for job in store.list_jobs()] == ids[::-1]
    assert [job.id for job in store.list_jobs(limit=2)] == ids[:0:-1]


def test_unfinished_jobs_are_failed_as_interrupted(
    store: JobStore, sessions: sessionmaker[Session]
) -> None:
    with session_scope(sessions) as session:
        session.add_all(
            [
                Job(kind="reindex", status=status, parameters={})
                for status in ("running", "queued", "succeeded")
            ]
        )
    assert sorted(store.fail_abandoned()) == [1, 2]
    jobs = {job.id: job for job in store.list_jobs()}
    for job_id in (1, 2):
        assert (jobs[job_id].status, jobs[job_id].error) == ("failed", INTERRUPTED)
        assert jobs[job_id].finished_at is not None
    assert jobs[3].status == "succeeded" and jobs[3].error is None
    assert store.fail_abandoned() == []


def test_only_jobs_whose_process_is_gone_are_failed(
    store: JobStore, sessions: sessionmaker[Session]
) -> None:
    """Several processes run workers over one database: a live process keeps its job."""
    host = this_process().split(":")[0]
    now = utc_now()
    owners = {
        "this process": (this_process(), now),
        "a dead process here": (f"{host}:999999999:1", now),
        "alive elsewhere": ("other-host:42:7", now),
        "silent elsewhere": ("other-host:43:7", now - ABANDONED_AFTER - timedelta(seconds=1)),
    }
    with session_scope(sessions) as session:
        session.add_all(
            Job(
                kind="reindex",
                status="running",
                parameters={"who": name},
                owner=owner,
                heartbeat_at=beat,
            )
            for name, (owner, beat) in owners.items()
        )
    failed = {store.get(job_id).parameters["who"] for job_id in store.fail_abandoned()}
    assert failed == {"a dead process here", "silent elsewhere"}


def test_a_job_failed_as_abandoned_keeps_that_end(
    store: JobStore, sessions: sessionmaker[Session]
) -> None:
    with session_scope(sessions) as session:
        session.add(Job(kind="reindex", status="running", parameters={}, owner=None))
    (job_id,) = store.fail_abandoned()
    late = store.finish(job_id, status="succeeded", message="done", result={})
    assert (late.status, late.error) == ("failed", INTERRUPTED)
