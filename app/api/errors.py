"""One place that turns every refusal into an HTTP status and a `{detail, code}` body."""

from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from app.gallery import errors as gallery
from app.schemas import ErrorBody
from app.vision import errors as vision
from app.vision.backbones.registry import UnknownBackbone

STATUS_BY_ERROR: dict[type[Exception], int] = {
    gallery.SubjectNotFound: 404,
    gallery.FaceNotFound: 404,
    gallery.DuplicateExternalId: 409,
    gallery.NoFaceFound: 422,
    gallery.MultipleFacesFound: 422,
    gallery.FaceNotEmbedded: 409,
    gallery.ModelNotReady: 503,
    gallery.JobConflict: 409,
    gallery.JobNotFound: 404,
    gallery.JobFinished: 409,
    gallery.RetrainRefused: 422,
    UnknownBackbone: 422,
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


def _body(detail: str, code: str, status: int) -> JSONResponse:
    return JSONResponse({"detail": detail, "code": code}, status_code=status)


async def _known_error(_: Request, error: Exception) -> JSONResponse:
    status = next(s for kind, s in STATUS_BY_ERROR.items() if isinstance(error, kind))
    return _body(str(error), getattr(error, "code", "error"), status)


async def _invalid_request(_: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, RequestValidationError)
    problems = "; ".join(
        f"{'.'.join(str(part) for part in problem['loc'])}: {problem['msg']}"
        for problem in error.errors()
    )
    return _body(problems, "invalid_request", 422)


async def _http_error(_: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, StarletteHTTPException)
    code = {404: "not_found", 405: "method_not_allowed"}.get(error.status_code, "http_error")
    return _body(str(error.detail), code, error.status_code)


def install_error_handlers(app: FastAPI) -> None:
    for kind in STATUS_BY_ERROR:
        app.add_exception_handler(kind, _known_error)
    app.add_exception_handler(RequestValidationError, _invalid_request)
    app.add_exception_handler(StarletteHTTPException, _http_error)
