"""Waiting for a background job through the API, as an operator's script would."""

import time
from typing import Any

from fastapi.testclient import TestClient


def wait_for_job(client: TestClient, job_id: int, timeout: float = 300.0) -> dict[str, Any]:
    """Poll `GET /admin/jobs/{id}` until the job has ended; its last answer."""
    deadline = time.monotonic() + timeout
    while (job := client.get(f"/admin/jobs/{job_id}").json())["status"] in ("queued", "running"):
        assert time.monotonic() < deadline, job
        time.sleep(0.1)
    job_answer: dict[str, Any] = job
    return job_answer
