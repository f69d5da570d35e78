"""Keys for tests: a client of the real app authenticates as the service's users do."""

import itertools

from fastapi.testclient import TestClient

from app.access.keys import create_key
from app.access.roles import Role
from app.audit.actor import SYSTEM, Actor, Case

_names = itertools.count(1)


def new_key(client: TestClient, role: Role = Role.admin, *, name: str | None = None) -> str:
    """A new key of `role` on the running app's database (its lifespan must have run)."""
    sessions = client.app.state.sessions  # type: ignore[attr-defined]
    name = name or f"test-{role}-{next(_names)}"
    return create_key(sessions, name=name, role=role, by=SYSTEM).key


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def authorize(client: TestClient, role: Role = Role.admin) -> TestClient:
    """`client` sending a new key of `role` with every request from now on."""
    client.headers.update(bearer(new_key(client, role)))
    return client


CASE = {"case_reference": "TEST-CASE-1"}
"""The case every test search is recorded against (probes and verifies need one)."""
BY = Actor(key_name="tests", role="admin", client="local", request_id="tests")
"""Who the tests are, in the audit trail, when they call the gallery directly."""
SEARCH_CASE = Case(reference="TEST-CASE-1", purpose="tests")
TEST_RATE_LIMITS = {role: {"per_minute": 600_000, "burst": 10_000} for role in Role}
"""Room for suites that send thousands of requests in seconds with one key; the limits
themselves are tested with small ones (tests/api/test_rate_limits_api.py)."""
