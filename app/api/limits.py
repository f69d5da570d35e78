"""Bounds on every request body: how large it may be, and how long it may stall.

Uploads are spooled to memory and disk before any route sees them, so a body
must be bounded where it enters: `RequestLimits` refuses a declared
Content-Length over the limit before reading a byte (413
`request_too_large`), counts a chunked body as it streams and refuses it the
moment it passes the limit, and answers 408 `request_timeout` when the client
sends nothing for `body_read_timeout_s`. Both refusals close the connection,
since the rest of the body is never read. The per-file limit
(`max_upload_bytes`, 413 `upload_too_large`) is checked by the routes.
"""

import anyio
from fastapi import FastAPI
from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.api.errors import error_response
from app.config import MiB, Settings

DISCONNECT: Message = {"type": "http.disconnect"}


def request_byte_limit(settings: Settings) -> int:
    """`max_request_bytes`, by default eight full-size uploads and 1 MiB of form fields."""
    return settings.max_request_bytes or 8 * settings.max_upload_bytes + MiB


def install_request_limits(app: FastAPI, settings: Settings) -> None:
    app.add_middleware(
        RequestLimits,
        max_bytes=request_byte_limit(settings),
        read_timeout_s=settings.body_read_timeout_s,
    )


class RequestLimits:
    """Pure ASGI middleware; see the module docstring."""

    def __init__(self, app: ASGIApp, *, max_bytes: int, read_timeout_s: float) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.read_timeout_s = read_timeout_s

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        body = _GuardedBody(self, scope, receive, send)
        declared = _content_length(scope)
        if declared is not None and declared > self.max_bytes:
            await body.refuse_too_large()
            return
        await self.app(scope, body.receive, body.send)


class _GuardedBody:
    """One request's body as the app reads it: counted, timed, and cut off with an answer.

    Once cut off, the app is told the client left, so it stops reading; if this
    answered, whatever the app sends after is dropped.
    """

    def __init__(self, limits: RequestLimits, scope: Scope, receive: Receive, send: Send) -> None:
        self.limits = limits
        self.scope = scope
        self._receive = receive
        self._send = send
        self.received = 0
        self.complete = False
        self.cut_off = False
        self.response_started = False
        self.answered = False

    async def receive(self) -> Message:
        if self.cut_off:
            return DISCONNECT
        if self.complete:
            # Past the body, the app only waits to hear of a disconnect: no deadline.
            return await self._receive()
        message: Message | None = None
        with anyio.move_on_after(self.limits.read_timeout_s):
            message = await self._receive()
        if message is None:
            return await self.refuse_stalled()
        if message["type"] == "http.request":
            self.received += len(message.get("body", b""))
            if self.received > self.limits.max_bytes:
                return await self.refuse_too_large()
            self.complete = not message.get("more_body", False)
        return message

    async def send(self, message: Message) -> None:
        if self.answered:
            return
        self.response_started = self.response_started or message["type"] == "http.response.start"
        await self._send(message)

    async def refuse_too_large(self) -> Message:
        return await self._refuse(
            413,
            "request_too_large",
            f"the request body is larger than {self.limits.max_bytes:,} bytes "
            "(LINEUP_MAX_REQUEST_BYTES)",
        )

    async def refuse_stalled(self) -> Message:
        return await self._refuse(
            408,
            "request_timeout",
            f"the request body stalled for more than {self.limits.read_timeout_s:g} s "
            "(LINEUP_BODY_READ_TIMEOUT_S)",
        )

    async def _refuse(self, status: int, code: str, detail: str) -> Message:
        """Answer `status` and close the connection, unless the app has begun answering."""
        self.cut_off = True
        if not self.response_started:
            response = error_response(detail, code, status, headers={"Connection": "close"})
            await response(self.scope, self._receive, self._send)
            self.answered = True
        return DISCONNECT


def _content_length(scope: Scope) -> int | None:
    """The declared body size, or None when absent or unreadable (the server refuses those)."""
    value = Headers(scope=scope).get("content-length")
    if value is None or not (value.isascii() and value.isdigit()):
        return None
    return int(value)
