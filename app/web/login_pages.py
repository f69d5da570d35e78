"""`/login` and `/logout`: a key typed once becomes a server-side login session.

The login form is protected by a double-submit token (a random cookie and the
same value in the form), since no session exists yet to hold one: another
site cannot read the cookie, so it cannot post a form that matches it. Failed
logins are limited per client address; a login that succeeds gives its token
back. Every login, failed login and logout is in the audit trail, never with
the key that was typed.
"""

import hmac
import logging
import math
import secrets
from typing import Annotated
from urllib.parse import urlsplit

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy.orm import Session, sessionmaker

from app.access.keys import KEY_FORMAT, KeyInfo, NotAuthenticated, authenticate, list_keys
from app.access.rate_limits import refund_token, take_token
from app.access.web_sessions import SESSION_COOKIE, end_session, start_session
from app.api.auth import SessionsDep, Unauthorized, actor_for, current_caller, public
from app.api.deps import SettingsDep
from app.audit.trail import record
from app.db.engine import session_scope
from app.web.templating import render

log = logging.getLogger(__name__)
router = APIRouter(include_in_schema=False)

LOGIN_CSRF_COOKIE = "lineup_login_csrf"
LOGIN_CSRF_MAX_AGE_S = 3600
DEFAULT_NEXT = "/gallery"
NOT_NEXT = ("/login", "/logout")
"""Where a login never sends the browser on: back to the form, or straight out again."""

NextQuery = Annotated[str, Query(alias="next", max_length=2000)]
NextField = Annotated[str, Form(alias="next", max_length=2000)]


def safe_next(path: str | None) -> str:
    """`path` if it is a path on this site, else the gallery: a login link must not send
    the browser to another site (`//evil`, `/\\evil`, `https://evil`)."""
    if not path or not path.startswith("/") or path.startswith("//"):
        return DEFAULT_NEXT
    if "\\" in path or any(ord(char) < 33 or ord(char) == 127 for char in path):
        return DEFAULT_NEXT
    parts = urlsplit(path)
    if parts.scheme or parts.netloc or parts.path.startswith(NOT_NEXT):
        return DEFAULT_NEXT
    return path


def same_token(sent: str, expected: str) -> bool:
    """Constant-time comparison of a token as sent with the one expected; on bytes, since
    `hmac.compare_digest` refuses (raises on) a string that is not ASCII."""
    return hmac.compare_digest(sent.encode(), expected.encode())


@router.get("/login", response_class=HTMLResponse, dependencies=[public()])
def login_page(request: Request, next_path: NextQuery = DEFAULT_NEXT) -> HTMLResponse:
    """The login form, with a fresh double-submit token."""
    return _login_form(request, next_path=safe_next(next_path))


@router.post("/login", dependencies=[public()])
def log_in(
    request: Request,
    sessions: SessionsDep,
    settings: SettingsDep,
    key: Annotated[str, Form(max_length=200)] = "",
    csrf_token: Annotated[str, Form(max_length=200)] = "",
    next_field: NextField = DEFAULT_NEXT,
) -> Response:
    """Start a session for a good key and go on to `next`; refuse a bad one with 401."""
    next_path = safe_next(next_field)
    sent_cookie = request.cookies.get(LOGIN_CSRF_COOKIE, "")
    if not sent_cookie or not same_token(sent_cookie, csrf_token):
        message = "The login form had expired or did not come from this site; log in again."
        return _login_form(
            request, next_path=next_path, message=message, code="csrf_failed", status=403
        )
    bucket = f"login:{_client(request)}"
    refused = take_token(sessions, bucket, settings.login_rate_limit)
    if refused is not None:
        log.warning("login refused for %s: too many failed logins", _client(request))
        return _too_many(request, next_path=next_path, retry_after_s=refused.retry_after_s)
    try:
        found = authenticate(sessions, key.strip())
    except NotAuthenticated as error:
        _audit_failure(request, sessions, presented=key.strip(), error=error)
        message = "That key was not accepted: it is unknown, malformed, revoked or expired."
        return _login_form(
            request, next_path=next_path, message=message, code="login_failed", status=401
        )
    refund_token(sessions, bucket, settings.login_rate_limit)
    return _logged_in(request, sessions, key=found, next_path=next_path)


@router.post("/logout", dependencies=[public()])
def log_out(
    request: Request,
    sessions: SessionsDep,
    csrf_token: Annotated[str, Form(max_length=200)] = "",
) -> Response:
    """End the login session (its CSRF token must come with the form) and go to /login."""
    token = request.cookies.get(SESSION_COOKIE)
    try:
        caller = current_caller(request)
    except Unauthorized:
        return _to_login_without_session()
    if caller.via != "session" or not token:
        return RedirectResponse(DEFAULT_NEXT, status_code=303)
    if not caller.csrf_token or not same_token(csrf_token, caller.csrf_token):
        detail = "logging out needs the form's CSRF token; use the Log out button"
        return render(request, "error.html", {"detail": detail, "code": "csrf_failed"}, status=403)
    end_session(sessions, token)
    with session_scope(sessions) as session:
        record(session, caller.actor, "logout")
    return _to_login_without_session()


def _login_form(
    request: Request,
    *,
    next_path: str,
    message: str | None = None,
    code: str | None = None,
    status: int = 200,
) -> HTMLResponse:
    """The form with a new double-submit token, and why the last try was refused."""
    token = secrets.token_urlsafe(32)
    context = {"next": next_path, "csrf_token": token, "message": message, "code": code}
    response = render(request, "login.html", context, status=status)
    response.set_cookie(
        LOGIN_CSRF_COOKIE,
        token,
        max_age=LOGIN_CSRF_MAX_AGE_S,
        path="/login",
        secure=request.url.scheme == "https",
        httponly=True,
        samesite="strict",
    )
    return response


def _too_many(request: Request, *, next_path: str, retry_after_s: float) -> HTMLResponse:
    wait = max(1, math.ceil(retry_after_s))
    message = f"Too many failed logins from this address; try again in {wait} seconds."
    response = _login_form(
        request, next_path=next_path, message=message, code="rate_limited", status=429
    )
    response.headers["Retry-After"] = str(wait)
    return response


def _logged_in(
    request: Request, sessions: sessionmaker[Session], *, key: KeyInfo, next_path: str
) -> RedirectResponse:
    if previous := request.cookies.get(SESSION_COOKIE):
        end_session(sessions, previous)  # a login always starts a session of its own
    started = start_session(sessions, key)
    with session_scope(sessions) as session:
        record(session, actor_for(request, key.name, key.role), "login")
    response = RedirectResponse(next_path, status_code=303)
    response.set_cookie(
        SESSION_COOKIE,
        started.token,
        path="/",
        secure=request.url.scheme == "https",
        httponly=True,
        samesite="strict",
    )
    response.delete_cookie(LOGIN_CSRF_COOKIE, path="/login")
    return response


def _audit_failure(
    request: Request, sessions: sessionmaker[Session], *, presented: str, error: NotAuthenticated
) -> None:
    """Record a refused login under the name of the key whose prefix was typed, if any;
    the secret itself is never written anywhere."""
    named = _key_named_by_prefix(sessions, presented)
    name, role = (named.name, str(named.role)) if named else ("unknown", "none")
    with session_scope(sessions) as session:
        record(
            session,
            actor_for(request, name, role),
            "login_failed",
            outcome="refused",
            details={"reason": error.code},
        )


def _key_named_by_prefix(sessions: sessionmaker[Session], presented: str) -> KeyInfo | None:
    match = KEY_FORMAT.fullmatch(presented)
    if match is None:
        return None
    return next((key for key in list_keys(sessions) if key.prefix == match[1]), None)


def _to_login_without_session() -> RedirectResponse:
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response


def _client(request: Request) -> str:
    return request.client.host if request.client else "unknown"
