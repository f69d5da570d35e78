"""Who is calling, and may they: every route declares the role it needs, next to itself.

A route says `dependencies=[allow(Role.investigator)]` (or `public()` for the
few that need no key). `allow` finds the caller from `Authorization: Bearer
<key>` or, for the pages, a login session cookie; refuses a missing,
malformed, unknown, expired or revoked key with 401 and `WWW-Authenticate:
Bearer`, the wrong role with 403, a session request that changes something
without its CSRF token with 403, and a key past its rate with 429 and
`Retry-After`. `require_declared_access` refuses to start an app with a route
that declares neither, so no route is ever open by omission.

With `LINEUP_AUTH=off` (loopback only, see `app.config`) every caller is an
admin named `auth-off`, and a request from another address is refused.
"""

import hmac
import ipaddress
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any, Literal

from fastapi import Depends, FastAPI, Request
from fastapi.params import Depends as DependsMarker
from fastapi.routing import APIRoute, RouteContext, iter_route_contexts
from fastapi.security import HTTPBearer
from sqlalchemy.orm import Session, sessionmaker

from app.access.keys import KeyInfo, NotAuthenticated, authenticate, note_use
from app.access.rate_limits import take_token
from app.access.roles import Role, may
from app.access.web_sessions import SESSION_COOKIE, resume_session
from app.audit.actor import Actor
from app.config import Settings
from app.gallery.errors import ModelNotReady

CSRF_HEADER = "X-CSRF-Token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
AUTH_OFF_NAME = "auth-off"

# Declares the scheme in the OpenAPI document; the header itself is read below, so that a
# malformed one is told apart from a missing one.
bearer_scheme = HTTPBearer(
    auto_error=False,
    description="An API key from `lineup keys create` or `POST /admin/keys`: "
    "`Authorization: Bearer lk_...`.",
)


class Unauthorized(Exception):
    """401: no usable credentials."""

    def __init__(self, detail: str, code: str) -> None:
        super().__init__(detail)
        self.code = code
        error = "invalid_request" if code == "key_missing" else "invalid_token"
        self.headers = {"WWW-Authenticate": f'Bearer realm="lineup", error="{error}"'}


class Forbidden(Exception):
    """403: the caller is known but may not do this."""

    def __init__(self, detail: str, code: str = "forbidden") -> None:
        super().__init__(detail)
        self.code = code


class RateLimited(Exception):
    """429: the key (or, for logins, the address) is over its rate."""

    code = "rate_limited"

    def __init__(self, detail: str, retry_after_s: float) -> None:
        super().__init__(detail)
        self.headers = {"Retry-After": str(max(1, math.ceil(retry_after_s)))}


@dataclass(frozen=True)
class Caller:
    """The authenticated caller of one request."""

    role: Role
    actor: Actor
    via: Literal["bearer", "session", "auth_off"]
    key: KeyInfo | None = None
    csrf_token: str | None = None
    """The session's CSRF token, for pages to embed (session callers only)."""


def request_sessions(request: Request) -> sessionmaker[Session]:
    sessions: sessionmaker[Session] | None = getattr(request.app.state, "sessions", None)
    if sessions is None:
        raise ModelNotReady("the service is still starting; try again shortly")
    return sessions


SessionsDep = Annotated[sessionmaker[Session], Depends(request_sessions)]


def current_caller(request: Request, _: Any = Depends(bearer_scheme)) -> Caller:  # noqa: B008
    """The caller, authenticated and within its rate; cached for the rest of the request."""
    cached: Caller | None = getattr(request.state, "caller", None)
    if cached is not None:
        return cached
    settings: Settings = request.app.state.settings
    if settings.auth == "off":
        caller = _auth_off_caller(request)
    else:
        caller = _authenticated(request, settings)
    request.state.caller = caller
    return caller


CallerDep = Annotated[Caller, Depends(current_caller)]


def allow(role: Role) -> DependsMarker:
    """The dependency a route declares: callers whose role grants `role` may use it."""

    def check(request: Request, caller: CallerDep) -> Caller:
        if not may(caller.role, role):
            raise Forbidden(f"a {caller.role} key may not do this; it needs the {role} role")
        if caller.via == "session" and request.method not in SAFE_METHODS:
            check_csrf(request, caller)
        return caller

    check.required_role = role  # type: ignore[attr-defined]  # read by the route audit
    marker: DependsMarker = Depends(check)
    return marker


class LoginRequired(Exception):
    """A page asked for without a usable login: the browser is sent to the login page."""

    code = "login_required"

    def __init__(self, detail: str, next_path: str) -> None:
        super().__init__(detail)
        self.next_path = next_path


def allow_page(role: Role) -> DependsMarker:
    """`allow` for an HTML page: without a usable login the browser is sent to /login
    (and back here after it) instead of being answered 401."""

    def check_page(request: Request) -> Caller:
        try:
            caller = current_caller(request)
        except Unauthorized as error:
            back = request.url.path + (f"?{request.url.query}" if request.url.query else "")
            raise LoginRequired(str(error), back) from error
        if not may(caller.role, role):
            raise Forbidden(f"a {caller.role} key may not open this page; it needs {role}")
        return caller

    check_page.required_role = role  # type: ignore[attr-defined]
    check_page.page = True  # type: ignore[attr-defined]  # left to this check by the gate
    marker: DependsMarker = Depends(check_page)
    return marker


def public() -> DependsMarker:
    """The declaration of a route anyone may use (liveness, the login page)."""

    def anyone() -> None:
        return None

    anyone.public = True  # type: ignore[attr-defined]
    marker: DependsMarker = Depends(anyone)
    return marker


def api_routes(app: FastAPI) -> list[RouteContext]:
    """Every API route of `app` as it is served: with what `include_router` added to it
    (prefix, dependencies), however deeply routers are nested. `app.routes` alone holds
    the included routers, not their routes."""
    return [
        route
        for route in iter_route_contexts(app.routes)
        if isinstance(route.original_route, APIRoute)
    ]


def declared_access(route: APIRoute | RouteContext) -> Role | Literal["public"] | None:
    """What `route` declared with `allow` or `public`, or None if it declared neither."""
    call = _declaration(route)
    if call is None:
        return None
    if getattr(call, "public", False):
        return "public"
    return Role(call.required_role)  # type: ignore[attr-defined]


def require_declared_access(app: FastAPI) -> None:
    """Refuse to build an app with a route that declared no access: it would be open."""
    undeclared = [
        f"{sorted(route.methods or ())} {route.path}"
        for route in api_routes(app)
        if declared_access(route) is None
    ]
    if undeclared:
        raise RuntimeError(f"routes without allow(...) or public(): {', '.join(undeclared)}")


def _declaration(route: APIRoute | RouteContext) -> Callable[..., Any] | None:
    """The `allow`, `allow_page` or `public` dependency of `route` (its effective one, with
    what its routers added), or None."""
    for dependency in route.dependant.dependencies:
        call: Callable[..., Any] | None = dependency.call
        if getattr(call, "public", False) or getattr(call, "required_role", None) is not None:
            return call
    return None


def actor_for(request: Request, key_name: str, role: Role | str) -> Actor:
    """The audit trail's name for the caller of `request`."""
    client = request.client.host if request.client else "unknown"
    request_id: str = getattr(request.state, "request_id", "") or "none"
    return Actor(key_name=key_name, role=str(role), client=client, request_id=request_id)


def _authenticated(request: Request, settings: Settings) -> Caller:
    sessions = request_sessions(request)
    header = request.headers.get("authorization")
    csrf = None
    try:
        if header is not None:
            key, via = authenticate(sessions, _bearer_token(header)), "bearer"
        elif cookie := request.cookies.get(SESSION_COOKIE):
            resumed = resume_session(sessions, cookie, idle_minutes=settings.session_idle_minutes)
            key, via, csrf = resumed.key, "session", resumed.csrf_token
        else:
            raise NotAuthenticated(
                "an API key is needed: send Authorization: Bearer <key>, or log in at /login",
                "key_missing",
            )
    except NotAuthenticated as error:
        raise Unauthorized(str(error), error.code) from error
    _within_rate(sessions, key, settings)
    note_use(sessions, key.id)
    actor = actor_for(request, key.name, key.role)
    return Caller(role=key.role, actor=actor, via=via, key=key, csrf_token=csrf)  # type: ignore[arg-type]


def _bearer_token(header: str) -> str:
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise NotAuthenticated("the Authorization header must read: Bearer <key>", "key_malformed")
    return token.strip()


def _within_rate(sessions: sessionmaker[Session], key: KeyInfo, settings: Settings) -> None:
    limit = settings.rate_limits[key.role]
    refused = take_token(sessions, f"key:{key.id}", limit)
    if refused is not None:
        raise RateLimited(
            f"key {key.name!r} is over its rate ({limit.per_minute:g} requests a minute, "
            f"bursts of {limit.burst}); retry after the time Retry-After gives",
            refused.retry_after_s,
        )


def check_csrf(request: Request, caller: Caller) -> None:
    sent = request.headers.get(CSRF_HEADER, "")
    # Bytes, not text: compare_digest refuses text that is not ASCII instead of comparing.
    if not caller.csrf_token or not hmac.compare_digest(sent.encode(), caller.csrf_token.encode()):
        raise Forbidden(
            f"a change made from a login session needs its CSRF token ({CSRF_HEADER})",
            "csrf_failed",
        )


def _auth_off_caller(request: Request) -> Caller:
    client = request.client.host if request.client else ""
    if _is_remote_address(client):
        raise Forbidden(
            "authentication is off on this service, so it answers only this machine",
            "auth_off_remote",
        )
    return Caller(
        role=Role.admin, actor=actor_for(request, AUTH_OFF_NAME, Role.admin), via="auth_off"
    )


def _is_remote_address(host: str) -> bool:
    try:
        return not ipaddress.ip_address(host).is_loopback
    except ValueError:  # not an address (an in-process test client): not from the network
        return False
