"""Keys are checked before a body is read: a caller without one uploads nothing.

FastAPI reads and parses a request's body before it runs the route's
dependencies, so `allow` alone would let anyone make the service spool a
multipart upload to its limit, or learn from a 422 how a body is checked,
before being told they need a key. This middleware finds the route a request
is for and, when it needs a key, authenticates the caller, checks the role
(and, for a change made from a login session, its CSRF token) and takes the
rate token first, answering 401, 403 or 429 without touching the body. The
caller it found is what the route's own `allow` then reads.

Pages are left to `allow_page`: they send a browser to the login page, and
they have no body to protect.
"""

from fastapi import FastAPI
from fastapi.routing import RouteContext
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.routing import Match
from starlette.types import ASGIApp, Receive, Scope, Send

from app.access.roles import Role, may
from app.api.auth import (
    SAFE_METHODS,
    Forbidden,
    RateLimited,
    Unauthorized,
    api_routes,
    check_csrf,
    current_caller,
    declared_access,
)
from app.api.errors import error_response
from app.gallery.errors import ModelNotReady


class KeyGate:
    """Pure ASGI middleware; see the module docstring."""

    def __init__(self, app: ASGIApp, *, served: FastAPI) -> None:
        self.app = app
        self.served = served
        self._routes: list[RouteContext] | None = None  # read once the app is complete

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        needed = self._needed_role(scope) if scope["type"] == "http" else None
        if needed is None:
            await self.app(scope, receive, send)
            return
        request = Request(scope)
        try:
            caller = await run_in_threadpool(current_caller, request)
            if not may(caller.role, needed):
                raise Forbidden(f"a {caller.role} key may not do this; it needs the {needed} role")
            if caller.via == "session" and request.method not in SAFE_METHODS:
                check_csrf(request, caller)
        except (Unauthorized, Forbidden, RateLimited, ModelNotReady) as refusal:
            status = _STATUS[type(refusal)]
            headers = getattr(refusal, "headers", None)
            response = error_response(str(refusal), refusal.code, status, headers=headers)
            await response(scope, receive, send)
            return
        await self.app(scope, receive, send)

    def _needed_role(self, scope: Scope) -> Role | None:
        """The role the API route `scope` is for needs; None for pages, public routes and
        paths no route serves (those are answered by the app as before)."""
        if self._routes is None:
            self._routes = api_routes(self.served)
        for route in self._routes:
            if route.matches(scope)[0] is Match.FULL:
                declared = declared_access(route)
                return declared if isinstance(declared, Role) and not _is_page(route) else None
        return None


_STATUS = {Unauthorized: 401, Forbidden: 403, RateLimited: 429, ModelNotReady: 503}


def _is_page(route: RouteContext) -> bool:
    return any(getattr(d.call, "page", False) for d in route.dependant.dependencies)
