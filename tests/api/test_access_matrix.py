"""Who may call what: every route of the app's own route table × every kind of credential.

The routes come from the running app, so a route added later is in the matrix
the day it is added, and one that declares no role fails it. Each request is
the plainest one the route takes (path ids of 1, no body): a refusal comes
before any validation, and what is let through fails validation or finds
nothing, so the matrix changes nothing and runs no model.
"""

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Literal

import pytest
from fastapi import APIRouter, FastAPI
from fastapi.params import Form
from fastapi.routing import APIRoute, RouteContext, iter_route_contexts
from fastapi.testclient import TestClient
from httpx import Response
from sqlalchemy import func, select, update

from app.access.keys import revoke_key
from app.access.roles import Role, may
from app.api.auth import allow, declared_access, public, require_declared_access
from app.audit.actor import SYSTEM
from app.db.engine import session_scope
from app.db.tables import ApiKey, AuditEvent
from app.db.types import utc_now

from access_support import bearer, new_key

Kind = Literal["api", "page", "public"]
UNKNOWN_KEY = "lk_0123abcd_" + "A1b2-C3d4_" * 4 + "xyz"  # well formed: 8 hex, 43 more
REFUSED_WITH = {
    "no key": "key_missing",
    "not a key": "key_malformed",
    "basic auth": "key_malformed",
    "no token": "key_malformed",
    "unknown key": "key_unknown",
    "revoked key": "key_revoked",
    "expired key": "key_expired",
}
"""The code of the 401 each credential that is no usable key gets."""
BROKEN_BODIES = {
    "form": (b"x", "multipart/form-data"),  # no boundary: Starlette cannot parse it (400)
    "json": (b"{", "application/json"),  # FastAPI: 422 JSON decode error
}


@dataclass(frozen=True)
class Endpoint:
    method: str
    path: str
    """The route's path with every parameter filled in with 1."""
    kind: Kind
    needs: Role | None
    takes_form: bool

    def __str__(self) -> str:
        return f"{self.method} {self.path}"


def endpoints(app: FastAPI) -> list[Endpoint]:
    """Every method of every API route the app serves, found through its route contexts
    (an included router is one entry of `app.routes`)."""
    found = []
    for route in iter_route_contexts(app.routes):
        if not isinstance(route.original_route, APIRoute):
            continue  # the OpenAPI document, the docs and /static: open by design
        declared = declared_access(route)
        assert declared is not None, f"{route.path} declares no access"
        path = re.sub(r"\{[^}]+\}", "1", str(route.path))
        for method in sorted(route.methods or ()):
            found.append(
                Endpoint(
                    method=method,
                    path=path,
                    kind=_kind(route, declared),
                    needs=None if declared == "public" else declared,
                    takes_form=_takes_form(route),
                )
            )
    return found


def _kind(route: RouteContext, declared: Role | Literal["public"]) -> Kind:
    if declared == "public":
        return "public"
    calls = [
        getattr(dependency.call, "__name__", "") for dependency in route.dependant.dependencies
    ]
    return "page" if "check_page" in calls else "api"


def _takes_form(route: RouteContext) -> bool:
    original = route.original_route
    assert isinstance(original, APIRoute)
    body = original.body_field
    return body is not None and isinstance(body.field_info, Form)


@pytest.fixture(scope="module")
def client(
    open_client: Callable[..., Any], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[TestClient]:
    """One app for the module; its requests carry only the credentials each test sends."""
    with open_client(tmp_path_factory.mktemp("matrix") / "data") as client:
        del client.headers["Authorization"]
        yield client


@pytest.fixture(scope="module")
def credentials(client: TestClient) -> dict[str, dict[str, str]]:
    """Headers for each kind of credential: the bad ones, and a key of each role."""
    sessions = client.app.state.sessions  # type: ignore[attr-defined]
    revoked = new_key(client, Role.admin, name="matrix-revoked")
    revoke_key(sessions, "matrix-revoked", by=SYSTEM)
    expired = new_key(client, Role.admin, name="matrix-expired")
    with session_scope(sessions) as session:
        session.execute(
            update(ApiKey)
            .where(ApiKey.name == "matrix-expired")
            .values(expires_at=utc_now() - timedelta(minutes=1))
        )
    headers = {
        "no key": {},
        "not a key": {"Authorization": "Bearer nope"},
        "basic auth": {"Authorization": "Basic abc"},
        "no token": {"Authorization": "Bearer"},
        "unknown key": bearer(UNKNOWN_KEY),
        "revoked key": bearer(revoked),
        "expired key": bearer(expired),
    }
    assert set(headers) == set(REFUSED_WITH)
    return headers | {
        role.value: bearer(new_key(client, role, name=f"matrix-{role}")) for role in Role
    }


def served(client: TestClient) -> list[Endpoint]:
    app: FastAPI = client.app  # type: ignore[assignment]
    return endpoints(app)


def audit_records(client: TestClient) -> int:
    with session_scope(client.app.state.sessions) as session:  # type: ignore[attr-defined]
        return session.scalar(select(func.count()).select_from(AuditEvent)) or 0


def send(client: TestClient, endpoint: Endpoint, headers: dict[str, str]) -> Response:
    response: Response = client.request(
        endpoint.method, endpoint.path, headers=headers, follow_redirects=False
    )
    return response


def is_login_redirect(response: Response) -> bool:
    return response.status_code == 303 and response.headers["location"].startswith("/login")


def unauthenticated_problem(response: Response, endpoint: Endpoint, code: str) -> str | None:
    """What is wrong with the answer to a request without a usable key, or None."""
    if endpoint.kind == "public":
        return None if response.status_code != 401 else "a public route asked for a key"
    if endpoint.kind == "page":
        return None if is_login_redirect(response) else "a page did not send to /login"
    if response.status_code != 401:
        return f"answered {response.status_code}, not 401"
    if not response.headers.get("www-authenticate", "").startswith("Bearer"):
        return "no WWW-Authenticate: Bearer"
    body = response.json()
    if set(body) != {"detail", "code"} or body["code"] != code:
        return f"body {body}, expected code {code}"
    return None


def role_problem(response: Response, endpoint: Endpoint, role: Role) -> str | None:
    """What is wrong with the answer to a request with a good key of `role`, or None."""
    if endpoint.needs is None:  # public: the login form may still refuse a post without its token
        return "a public route asked for a key" if response.status_code == 401 else None
    if may(role, endpoint.needs):
        if response.status_code in (401, 403) or is_login_redirect(response):
            return f"refused ({response.status_code}) although the {role} role may"
        return None
    if response.status_code != 403:
        return f"answered {response.status_code}, not 403"
    if endpoint.kind == "page":  # a page for a browser, naming its code
        return None if 'data-code="forbidden"' in response.text else "a page without its code"
    body = response.json()
    if set(body) != {"detail", "code"} or body["code"] != "forbidden":
        return f"body {body}, expected code forbidden"
    return None


def test_the_matrix_covers_the_whole_route_table(client: TestClient) -> None:
    found = {str(endpoint): endpoint for endpoint in served(client)}
    kinds = {name: found[name].kind for name in ("POST /probe", "GET /probe", "POST /login")}
    assert kinds == {"POST /probe": "api", "GET /probe": "page", "POST /login": "public"}
    assert found["DELETE /admin/audit"].needs == Role.admin
    assert found["POST /admin/jobs/1/cancel"].needs == Role.admin  # from its router
    assert found["POST /subjects/1/photos"].takes_form and not found["POST /subjects"].takes_form
    assert len(found) >= 38


@pytest.mark.parametrize("credential", list(REFUSED_WITH))
def test_a_route_refuses_a_caller_without_a_usable_key(
    client: TestClient, credentials: dict[str, dict[str, str]], credential: str
) -> None:
    code = REFUSED_WITH[credential]
    records = audit_records(client)
    problems = [
        f"{endpoint}: {problem}"
        for endpoint in served(client)
        if (
            problem := unauthenticated_problem(
                send(client, endpoint, credentials[credential]), endpoint, code
            )
        )
    ]
    assert problems == []
    assert audit_records(client) == records


@pytest.mark.parametrize("role", list(Role))
def test_a_route_answers_a_key_of_each_role_as_its_declaration_says(
    client: TestClient, credentials: dict[str, dict[str, str]], role: Role
) -> None:
    records = audit_records(client)
    problems = [
        f"{endpoint}: {problem}"
        for endpoint in served(client)
        if (
            problem := role_problem(send(client, endpoint, credentials[role.value]), endpoint, role)
        )
    ]
    assert problems == []
    assert audit_records(client) == records  # nothing let through was done


def test_a_refusal_comes_before_the_body_is_read(
    client: TestClient, credentials: dict[str, dict[str, str]]
) -> None:
    """A body FastAPI cannot parse (JSON that is not, a multipart without its boundary)
    is answered 401 without a key and 403 with the wrong role, never 422 or 400: the
    caller learns nothing of how a body is checked, and uploads nothing first."""
    problems = []
    for endpoint in served(client):
        if endpoint.kind != "api" or endpoint.method in ("GET", "DELETE"):
            continue
        outsider = next(role for role in Role if not may(role, endpoint.needs))  # type: ignore[arg-type]
        content, content_type = BROKEN_BODIES["form" if endpoint.takes_form else "json"]
        for sent, expected in (({}, 401), (credentials[outsider.value], 403)):
            headers = {"content-type": content_type, **sent}
            response = client.request(
                endpoint.method, endpoint.path, content=content, headers=headers
            )
            if response.status_code != expected:
                problems.append(f"{endpoint} as {outsider if sent else 'nobody'}: {response.text}")
    assert problems == []


def test_public_routes_answer_without_a_key(client: TestClient) -> None:
    assert client.get("/health/live").json() == {"status": "live"}
    assert client.get("/health/ready").json() == {"status": "ready"}
    assert client.get("/login").status_code == 200


def test_an_app_with_a_route_that_declares_no_access_is_refused() -> None:
    """Directly on the app, in an included router, or in a router included in another:
    a route without `allow` or `public` stops the app from being built."""
    for nesting in range(3):
        app = FastAPI()
        app.add_api_route("/live", lambda: None, dependencies=[public()])
        if nesting == 0:
            app.add_api_route("/open", lambda: None, methods=["POST"])
        else:
            router = APIRouter()
            router.add_api_route("/declared", lambda: None, dependencies=[allow(Role.viewer)])
            router.add_api_route("/open", lambda: None, methods=["POST"])
            for _ in range(nesting - 1):
                outer = APIRouter(prefix="/outer")
                outer.include_router(router)
                router = outer
            app.include_router(router)
        with pytest.raises(RuntimeError, match=r"\['POST'\] (/outer)*/open$"):
            require_declared_access(app)


def test_a_declaration_made_where_a_router_is_included_counts() -> None:
    app = FastAPI()
    router = APIRouter()
    router.add_api_route("/jobs", lambda: None)
    app.include_router(router, dependencies=[allow(Role.admin)])
    app.add_api_route("/live", lambda: None, dependencies=[public()])
    require_declared_access(app)
    declared = {
        route.path: declared_access(route)
        for route in iter_route_contexts(app.routes)
        if isinstance(route.original_route, APIRoute)
    }
    assert declared == {"/jobs": Role.admin, "/live": "public"}
