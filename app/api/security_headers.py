"""Security headers on every response: pages, API answers, static files, errors, redirects.

The pages load nothing from elsewhere and carry no inline script, style or
handler, so one strict Content-Security-Policy holds for every path but two
kinds, each given the least it needs:

- FastAPI's `/docs` and `/redoc` pull Swagger UI and ReDoc from a CDN with an
  inline bootstrap script (they cannot work offline anyway);
- an evaluation report (`/reports/...`, written by `lineup evaluate`) styles
  itself with an inline `<style>`; it may run no script at all.
"""

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

STRICT_POLICY = (
    "default-src 'self'; img-src 'self' data: blob:; script-src 'self'; style-src 'self'; "
    "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
CDN = "https://cdn.jsdelivr.net"
DOCS_POLICY = (
    f"default-src 'self'; img-src 'self' data: https://fastapi.tiangolo.com {CDN}; "
    f"script-src 'self' 'unsafe-inline' {CDN}; style-src 'self' 'unsafe-inline' {CDN}; "
    f"worker-src blob:; object-src 'none'; base-uri 'none'; form-action 'self'; "
    "frame-ancestors 'none'"
)
REPORT_POLICY = (
    "default-src 'none'; img-src 'self' data:; style-src 'unsafe-inline'; script-src 'none'; "
    "object-src 'none'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)
# FastAPI's default documentation paths, which `create_app` keeps.
DOCS_PATHS = frozenset({"/docs", "/docs/oauth2-redirect", "/redoc"})
REPORTS_PREFIX = "/reports/"

COMMON_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Permissions-Policy": "camera=(), microphone=(), geolocation=(), payment=(), usb=()",
}


def policy_for(path: str) -> str:
    """The Content-Security-Policy of the response to a request for `path`."""
    if path in DOCS_PATHS:
        return DOCS_POLICY
    if path.startswith(REPORTS_PREFIX):
        return REPORT_POLICY
    return STRICT_POLICY


class SecurityHeaders:
    """Pure ASGI middleware: sets the headers on each response as it starts, replacing any
    a route set, so no path answers with a weaker policy than `policy_for` gives it."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        policy = policy_for(scope["path"])

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                headers["Content-Security-Policy"] = policy
                for name, value in COMMON_HEADERS.items():
                    headers[name] = value
            await send(message)

        await self.app(scope, receive, send_with_headers)
