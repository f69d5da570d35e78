"""Every response carries the security headers: pages, API answers, static files, errors,
redirects; the documentation and report paths get their own narrower policies."""

from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from app.api.security_headers import DOCS_POLICY, REPORT_POLICY, STRICT_POLICY

STRICT_DIRECTIVES = (
    "default-src 'self'",
    "script-src 'self'",
    "style-src 'self'",
    "object-src 'none'",
    "base-uri 'none'",
    "form-action 'self'",
    "frame-ancestors 'none'",
)


def assert_secured(answer_headers: object, policy: str = STRICT_POLICY) -> None:
    headers = dict(answer_headers)  # type: ignore[call-overload]
    assert headers["content-security-policy"] == policy
    assert headers["x-content-type-options"] == "nosniff"
    assert headers["x-frame-options"] == "DENY"
    assert headers["referrer-policy"] == "no-referrer"


def test_the_strict_policy_allows_nothing_from_elsewhere_and_nothing_inline() -> None:
    directives = [part.strip() for part in STRICT_POLICY.split(";")]
    for directive in STRICT_DIRECTIVES:
        assert directive in directives
    assert "unsafe-inline" not in STRICT_POLICY and "unsafe-eval" not in STRICT_POLICY
    assert "https:" not in STRICT_POLICY and "*" not in STRICT_POLICY


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [
        ("GET", "/gallery", 200),  # a page
        ("GET", "/health/live", 200),  # the API's JSON
        ("GET", "/subjects", 200),
        ("GET", "/static/common.js", 200),  # a static file
        ("GET", "/static/missing.js", 404),
        ("GET", "/no-such-path", 404),  # an error
        ("GET", "/subjects/999999", 404),
        ("DELETE", "/gallery", 405),
        ("GET", "/", 303),  # a redirect
        ("GET", "/login", 200),  # a public page
    ],
)
def test_every_response_carries_the_headers(
    client: TestClient, method: str, path: str, status: int
) -> None:
    answer = client.request(method, path, follow_redirects=False)
    assert answer.status_code == status
    assert_secured(answer.headers)


def test_a_refusal_before_the_key_is_checked_carries_them(client: TestClient) -> None:
    keyless = TestClient(client.app)
    unauthorized = keyless.get("/subjects")
    assert unauthorized.status_code == 401
    assert_secured(unauthorized.headers)
    to_login = keyless.get("/gallery", follow_redirects=False)
    assert to_login.status_code == 303
    assert_secured(to_login.headers)
    too_large = client.post("/subjects", content=b"x" * 10, headers={"content-length": str(10**10)})
    assert too_large.status_code == 413
    assert_secured(too_large.headers)


def test_pages_are_not_kept_in_caches(client: TestClient) -> None:
    assert client.get("/gallery").headers["cache-control"] == "no-store"
    assert client.get("/login").headers["cache-control"] == "no-store"


def test_the_docs_get_a_policy_of_their_own(client: TestClient) -> None:
    """Swagger UI comes from a CDN with an inline bootstrap, on these paths alone."""
    docs = client.get("/docs")
    assert docs.status_code == 200
    assert_secured(docs.headers, DOCS_POLICY)
    assert "frame-ancestors 'none'" in DOCS_POLICY and "object-src 'none'" in DOCS_POLICY
    assert_secured(client.get("/openapi.json").headers)
    assert_secured(client.get("/docsx").headers)


def test_a_report_may_style_itself_but_run_no_script(
    client: TestClient, web_data_dir: Path
) -> None:
    folder = web_data_dir / "reports" / "styled"
    folder.mkdir(parents=True)
    (folder / "index.html").write_text("<style>h1 { color: red }</style><h1>Report</h1>")
    answer = client.get("/reports/styled/")
    assert answer.status_code == 200
    assert_secured(answer.headers, REPORT_POLICY)
    assert "script-src 'none'" in REPORT_POLICY and "default-src 'none'" in REPORT_POLICY
