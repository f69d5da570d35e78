"""One place that turns every refusal into an HTTP status and a `{detail, code}` body."""

import logging
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import urlencode

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, RedirectResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.access.keys import KeyNameTaken, KeyNotFound, KeyRefused
from app.api.auth import Forbidden, LoginRequired, RateLimited, Unauthorized
from app.api.cases import CaseMissing
from app.gallery import errors as gallery
from app.schemas import ErrorBody
from app.vision import errors as vision
from app.vision.backbones.registry import UnknownBackbone

log = logging.getLogger(__name__)

STATUS_BY_ERROR: dict[type[Exception], int] = {
    gallery.SubjectNotFound: 404,
    gallery.FaceNotFound: 404,
    gallery.DuplicateExternalId: 409,
    gallery.NoFaceFound: 422,
    gallery.MultipleFacesFound: 422,
    gallery.FaceNotEmbedded: 409,
    gallery.ModelSwitched: 409,
    gallery.ModelNotReady: 503,
    gallery.JobConflict: 409,
    gallery.JobNotFound: 404,
    gallery.JobFinished: 409,
    gallery.RetrainRefused: 422,
    UnknownBackbone: 422,
    Unauthorized: 401,
    Forbidden: 403,
    RateLimited: 429,
    KeyNotFound: 404,
    KeyNameTaken: 409,
    KeyRefused: 422,
    CaseMissing: 422,
    vision.EmptyImage: 400,
    vision.UnreadableImage: 415,
    vision.TruncatedImage: 400,
    vision.ImageTooLarge: 413,
    vision.AbsurdAspectRatio: 422,
}


class UploadTooLarge(Exception):
    code = "upload_too_large"


class BadRequest(Exception):
    """A request the routers refuse before it reaches the gallery (wrong mix of fields)."""

    code = "bad_request"


STATUS_BY_ERROR[UploadTooLarge] = 413
STATUS_BY_ERROR[BadRequest] = 400


def error_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI documentation of error answers: each has an `ErrorBody`."""
    return {status: {"model": ErrorBody} for status in statuses}


ANY_ROUTE_ERRORS = (408, 413, 422, 500)
"""What every route can answer: the request limits (408, 413), request validation
(422) and an internal error (500)."""
KEYED_ROUTE_ERRORS = (401, 403, 429)
"""What every route that needs a key can answer besides: no usable key, the wrong role
(or a session change without its CSRF token), over the key's rate."""


def router_errors(*statuses: int, keyed: bool = True) -> dict[int | str, dict[str, Any]]:
    """A router's `responses`: ANY_ROUTE_ERRORS, KEYED_ROUTE_ERRORS unless its routes are
    public, and the `statuses` all its routes share."""
    keyed_errors = KEYED_ROUTE_ERRORS if keyed else ()
    return error_responses(*ANY_ROUTE_ERRORS, *keyed_errors, *statuses)


def error_response(
    detail: str, code: str, status: int, headers: Mapping[str, str] | None = None
) -> JSONResponse:
    """The one shape of every refusal: `{detail, code}`."""
    return JSONResponse({"detail": detail, "code": code}, status_code=status, headers=headers)


async def _known_error(_: Request, error: Exception) -> JSONResponse:
    status = next(s for kind, s in STATUS_BY_ERROR.items() if isinstance(error, kind))
    headers: Mapping[str, str] | None = getattr(error, "headers", None)
    return error_response(str(error), getattr(error, "code", "error"), status, headers=headers)


async def _to_login(_: Request, error: Exception) -> RedirectResponse:
    """A page without a usable login: to the login page, and back here after it."""
    assert isinstance(error, LoginRequired)
    return RedirectResponse(f"/login?{urlencode({'next': error.next_path})}", status_code=303)


async def _invalid_request(_: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, RequestValidationError)
    problems = "; ".join(
        f"{'.'.join(str(part) for part in problem['loc'])}: {problem['msg']}"
        for problem in error.errors()
    )
    return error_response(problems, "invalid_request", 422)


async def _http_error(request: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, StarletteHTTPException)
    if _unreadable_json(error):
        detail = f"the body is not JSON that can be read: {error.__cause__}"
        return error_response(detail, "invalid_request", 422)
    code = {404: "not_found", 405: "method_not_allowed"}.get(error.status_code, "http_error")
    headers = dict(error.headers or {})
    if error.status_code == 405:
        headers["Allow"] = _allowed_methods(request)
    return error_response(str(error.detail), code, error.status_code, headers=headers)


HTTP_METHODS = ("DELETE", "GET", "HEAD", "OPTIONS", "PATCH", "POST", "PUT")


def _allowed_methods(request: Request) -> str:
    """The methods some route serves at the request's path, found by asking the routes
    about each: Starlette's own 405 names only those of the first route there, and
    `/subjects` has one route for GET and another for POST."""

    def served(method: str) -> bool:
        scope = {
            "type": "http",
            "path": request.scope["path"],
            "root_path": request.scope.get("root_path", ""),
            "method": method,
        }
        return any(route.matches(scope)[0] is Match.FULL for route in request.app.router.routes)

    return ", ".join(method for method in HTTP_METHODS if served(method))


def _unreadable_json(error: StarletteHTTPException) -> bool:
    """FastAPI's 400 for a JSON body it could not decode: bytes that are not UTF-8,
    nesting too deep for the parser, an integer too long to convert."""
    return error.status_code == 400 and isinstance(error.__cause__, ValueError | RecursionError)


class InternalErrors:
    """Pure ASGI middleware: an unhandled exception becomes a JSON 500 `internal_error`.

    Starlette's outermost ServerErrorMiddleware sends its 500 and then re-raises,
    and uvicorn closes the connection of any request that raised, so a client's
    next request on the same keep-alive connection is reset. This answers from
    inside and returns normally; the traceback goes to the log. Once a response
    has started it cannot be replaced, so the exception goes on up.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def watched_send(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, receive, watched_send)
        except Exception:
            if started:
                raise
            log.exception("internal error answering %s %s", scope["method"], scope["path"])
            await error_response("internal error", "internal_error", 500)(scope, receive, send)


def _with_error_body(openapi: Callable[[], dict[str, Any]]) -> Callable[[], dict[str, Any]]:
    """`openapi` with FastAPI's `HTTPValidationError` (a list of problems), which Lineup
    never sends, replaced by `ErrorBody` wherever a route did not declare its own 422."""
    replaced = {"$ref": "#/components/schemas/HTTPValidationError"}

    def rewrite(node: Any) -> Any:
        if node == replaced:
            return {"$ref": "#/components/schemas/ErrorBody"}
        if isinstance(node, dict):
            return {key: rewrite(value) for key, value in node.items()}
        if isinstance(node, list):
            return [rewrite(item) for item in node]
        return node

    def with_error_body() -> dict[str, Any]:
        document: dict[str, Any] = rewrite(openapi())
        schemas = document.setdefault("components", {}).setdefault("schemas", {})
        schemas.pop("HTTPValidationError", None)
        schemas.pop("ValidationError", None)
        schemas.setdefault("ErrorBody", ErrorBody.model_json_schema())
        return document

    return with_error_body


def install_error_handlers(app: FastAPI) -> None:
    """Map every error to its `{detail, code}` answer, and say so in the OpenAPI document."""
    for kind in STATUS_BY_ERROR:
        app.add_exception_handler(kind, _known_error)
    app.add_exception_handler(RequestValidationError, _invalid_request)
    app.add_exception_handler(LoginRequired, _to_login)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_middleware(InternalErrors)
    app.openapi = _with_error_body(app.openapi)  # type: ignore[method-assign]
