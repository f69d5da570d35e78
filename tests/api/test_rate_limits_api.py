"""Rate limits through HTTP: a key past its burst waits as long as `Retry-After` says,
other keys go on, and every process serving the gallery counts against one bucket."""

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient
from httpx import Response

from app.access.roles import Role

from access_support import bearer, new_key

BURST = 3
LIMITS = {"investigator": {"per_minute": 60, "burst": BURST}}  # a token back each second


def stats(client: TestClient, key: str) -> Response:
    response: Response = client.get("/stats", headers=bearer(key))
    return response


def assert_rate_limited(response: Response) -> int:
    """The refusal's `Retry-After`, once its shape is checked."""
    assert response.status_code == 429, response.text
    body = response.json()
    assert set(body) == {"detail", "code"} and body["code"] == "rate_limited"
    retry_after = response.headers["Retry-After"]
    assert retry_after.isdigit() and int(retry_after) >= 1
    return int(retry_after)


def test_a_key_past_its_burst_waits_as_long_as_retry_after_says(
    open_client: Callable[..., Any], tmp_path: Path
) -> None:
    with open_client(tmp_path / "data", rate_limits=LIMITS) as client:
        ivy, sam = new_key(client, Role.investigator), new_key(client, Role.investigator)
        assert [stats(client, ivy).status_code for _ in range(BURST)] == [200] * BURST
        refused_at = time.monotonic()
        retry_after = assert_rate_limited(stats(client, ivy))
        assert retry_after <= 1  # one token a second: never more than a second away

        assert stats(client, sam).status_code == 200  # another key has its own bucket
        assert client.get("/stats").status_code == 200  # and the admin's key its role's limit

        deadline = refused_at + retry_after + 1.0
        while (answer := stats(client, ivy)).status_code == 429:
            assert time.monotonic() < deadline, "still limited after Retry-After"
            time.sleep(0.1)
        assert answer.status_code == 200
        assert_rate_limited(stats(client, ivy))  # that was the one token back


def test_two_apps_on_one_gallery_share_a_keys_bucket(
    open_client: Callable[..., Any], tmp_path: Path
) -> None:
    data_dir = tmp_path / "data"
    with (
        open_client(data_dir, rate_limits=LIMITS) as first,
        open_client(data_dir, rate_limits=LIMITS) as second,
    ):
        ivy = new_key(first, Role.investigator)
        answers = [stats(app, ivy).status_code for app in (first, second, first)]
        assert answers == [200] * BURST
        assert_rate_limited(stats(second, ivy))
        assert_rate_limited(stats(first, ivy))
