"""Keys for tests: a client of the real app authenticates as the service's users do."""

import itertools

from fastapi.testclient import TestClient

from app.access.keys import create_key
from app.access.roles import Role
from app.audit.actor import SYSTEM

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
