"""Logging in to the pages: the login form, its session cookie, where it leads, and when
the session ends (logout, a revoked key, an idle timeout); failed logins are limited per
client address, and pages show each role only what it may do.

Each test speaks from a client address of its own, so the failed-login buckets (one per
address) of different tests never meet.
"""

import itertools
import re
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import select, update

from app.access.keys import revoke_key
from app.access.rate_limits import RateLimit
from app.access.roles import Role
from app.access.web_sessions import SESSION_COOKIE
from app.audit.actor import SYSTEM
from app.config import Settings
from app.db.engine import session_scope
from app.db.tables import AuditEvent, WebSession
from app.db.types import utc_now
from app.main import create_app
from app.vision.embedder import FaceEmbedder
from app.web.login_pages import LOGIN_CSRF_COOKIE, safe_next

from access_support import new_key

MODELS = Path(__file__).resolve().parents[2] / "models"
LOGIN_LIMIT = RateLimit(per_minute=1, burst=3)
_addresses = itertools.count(10)


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory, embedder: FaceEmbedder) -> Iterator[FastAPI]:
    """The app with few failed logins allowed and a one-minute idle timeout."""
    settings = Settings(
        data_dir=tmp_path_factory.mktemp("login-data"),
        models_dir=MODELS,
        device="cpu",
        login_rate_limit=LOGIN_LIMIT,
        session_idle_minutes=1,
    )
    lineup = create_app(settings, embedder=embedder)
    with TestClient(lineup):  # runs the lifespan for the whole module
        yield lineup


@pytest.fixture(scope="module")
def admin(app: FastAPI) -> TestClient:
    """A client with an admin key, for setting things up."""
    client = TestClient(app)
    client.headers["Authorization"] = f"Bearer {new_key(client, Role.admin)}"
    return client


@pytest.fixture
def browser_like(app: FastAPI) -> Callable[..., TestClient]:
    """A client without a key, from a client address no other test uses."""

    def make(**options: object) -> TestClient:
        return TestClient(app, client=(f"10.0.0.{next(_addresses)}", 50000), **options)  # type: ignore[arg-type]

    return make


def login_form(client: TestClient, next_path: str = "/gallery") -> str:
    """Open the login page; answers the form's double-submit token."""
    page = client.get("/login", params={"next": next_path})
    assert page.status_code == 200
    found = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert found is not None
    return found[1]


def log_in(client: TestClient, key: str, next_path: str = "/gallery") -> httpx.Response:
    token = login_form(client, next_path)
    return client.post(
        "/login",
        data={"key": key, "csrf_token": token, "next": next_path},
        follow_redirects=False,
    )


def csrf_of(page_html: str) -> str:
    found = re.search(r'<meta name="csrf-token" content="([^"]+)">', page_html)
    assert found is not None, "the page carries no CSRF token"
    return found[1]


def trail(app: FastAPI, action: str) -> list[AuditEvent]:
    with session_scope(app.state.sessions) as session:
        rows = session.scalars(select(AuditEvent).where(AuditEvent.action == action))
        return [row for row in rows]


def test_a_page_without_a_login_goes_to_the_login_page_and_back(
    admin: TestClient, browser_like: Callable[..., TestClient]
) -> None:
    client = browser_like()
    for path in ("/gallery", "/probe", "/admin", "/audit", "/gallery/1"):
        answer = client.get(path, follow_redirects=False)
        assert answer.status_code == 303, path
        assert answer.headers["location"] == f"/login?next={path.replace('/', '%2F')}"
    key = new_key(admin, Role.admin)
    logged_in = log_in(client, key, "/probe")
    assert logged_in.status_code == 303
    assert logged_in.headers["location"] == "/probe"
    assert client.get("/probe").status_code == 200


def test_the_login_page_sets_its_double_submit_token(
    browser_like: Callable[..., TestClient],
) -> None:
    client = browser_like()
    page = client.get("/login")
    cookie = page.headers["set-cookie"]
    assert cookie.startswith(f"{LOGIN_CSRF_COOKIE}=")
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie and "Path=/login" in cookie
    assert f'value="{client.cookies[LOGIN_CSRF_COOKIE]}"' in page.text
    assert 'id="login-key" name="key" type="password"' in page.text


def test_a_good_key_starts_a_session_with_a_strict_http_only_cookie(
    app: FastAPI, admin: TestClient, browser_like: Callable[..., TestClient]
) -> None:
    client = browser_like()
    key = new_key(admin, Role.viewer, name="lee-viewer")
    answer = log_in(client, key)
    assert answer.status_code == 303 and answer.headers["location"] == "/gallery"
    session_cookie = next(
        header
        for header in answer.headers.get_list("set-cookie")
        if header.startswith(f"{SESSION_COOKIE}=")
    )
    assert "HttpOnly" in session_cookie and "SameSite=strict" in session_cookie
    assert "Path=/" in session_cookie and "Secure" not in session_cookie  # plain http here
    assert key not in answer.headers.get("set-cookie", "")
    gallery = client.get("/gallery")
    assert gallery.status_code == 200
    assert '<strong id="who-key">lee-viewer</strong>' in gallery.text
    assert 'action="/logout"' in gallery.text
    logins = [row for row in trail(app, "login") if row.key_name == "lee-viewer"]
    assert len(logins) == 1 and logins[0].role == "viewer" and logins[0].outcome == "ok"


def test_under_https_the_session_cookie_is_secure(
    admin: TestClient, browser_like: Callable[..., TestClient]
) -> None:
    client = browser_like(base_url="https://testserver")
    answer = log_in(client, new_key(admin, Role.viewer))
    assert answer.status_code == 303
    assert "Secure" in answer.headers["set-cookie"]


def test_a_bad_key_is_refused_and_recorded_without_its_secret(
    app: FastAPI, admin: TestClient, browser_like: Callable[..., TestClient]
) -> None:
    client = browser_like()
    real = new_key(admin, Role.investigator, name="kim-investigator")
    wrong_secret = real[:12] + ("A" if real[12] != "A" else "B") + real[13:]
    attempts = [
        (wrong_secret, "kim-investigator", "key_unknown"),
        ("lk_00000000_" + "x" * 43, "unknown", "key_unknown"),
        ("not a key at all", "unknown", "key_malformed"),
    ]
    for presented, named, reason in attempts:
        before = len(trail(app, "login_failed"))
        answer = log_in(client, presented)
        assert answer.status_code == 401
        assert 'data-code="login_failed"' in answer.text
        assert SESSION_COOKIE not in client.cookies
        failed = trail(app, "login_failed")
        assert len(failed) == before + 1
        assert failed[-1].key_name == named and failed[-1].outcome == "refused"
        assert failed[-1].details == f'{{"reason":"{reason}"}}'


def test_a_login_post_without_its_double_submit_token_is_refused(
    admin: TestClient, browser_like: Callable[..., TestClient]
) -> None:
    client = browser_like()
    key = new_key(admin, Role.viewer)
    login_form(client)
    for token in ("", "forged-by-another-site", "é-not-ascii"):
        answer = client.post(
            "/login", data={"key": key, "csrf_token": token}, follow_redirects=False
        )
        assert answer.status_code == 403
        assert 'data-code="csrf_failed"' in answer.text
        assert SESSION_COOKIE not in client.cookies
    cookieless = browser_like()  # a cross-site form: the strict cookie is not sent
    answer = cookieless.post("/login", data={"key": key, "csrf_token": "x"})
    assert answer.status_code == 403


@pytest.mark.parametrize(
    "next_path",
    [
        "//evil.example/steal",
        "/\\evil.example",
        "/\\/evil.example",
        "https://evil.example/",
        "http:/evil.example",
        "javascript:alert(1)",
        "evil.example",
        "/\t/evil.example",
        "/logout",
        "",
    ],
)
def test_a_login_never_leads_off_the_site(
    admin: TestClient, browser_like: Callable[..., TestClient], next_path: str
) -> None:
    answer = log_in(browser_like(), new_key(admin, Role.viewer), next_path)
    assert answer.status_code == 303
    assert answer.headers["location"] == "/gallery"


def test_safe_next_keeps_paths_of_this_site() -> None:
    assert safe_next("/gallery/3?q=a%20b#faces") == "/gallery/3?q=a%20b#faces"
    assert safe_next("/audit?case_reference=C-1") == "/audit?case_reference=C-1"
    assert safe_next(None) == "/gallery"


def test_failed_logins_from_one_address_are_limited(
    admin: TestClient, browser_like: Callable[..., TestClient]
) -> None:
    """`burst` failures are answered 401; the next attempt, even with a good key, is 429
    with Retry-After, while another address may still log in."""
    client = browser_like()
    good = new_key(admin, Role.viewer)
    for _ in range(LOGIN_LIMIT.burst):
        assert log_in(client, "lk_00000000_" + "x" * 43).status_code == 401
    refused = log_in(client, good)
    assert refused.status_code == 429
    assert 1 <= int(refused.headers["retry-after"]) <= 60
    assert 'data-code="rate_limited"' in refused.text
    assert SESSION_COOKIE not in client.cookies
    assert log_in(browser_like(), good).status_code == 303


def test_good_logins_do_not_use_up_the_failed_login_limit(
    admin: TestClient, browser_like: Callable[..., TestClient]
) -> None:
    client = browser_like()
    key = new_key(admin, Role.viewer)
    for _ in range(LOGIN_LIMIT.burst + 2):
        assert log_in(client, key).status_code == 303


def test_logout_ends_the_session(
    app: FastAPI, admin: TestClient, browser_like: Callable[..., TestClient]
) -> None:
    client = browser_like()
    log_in(client, new_key(admin, Role.viewer, name="pat-viewer"))
    old_cookie = client.cookies[SESSION_COOKIE]
    token = csrf_of(client.get("/gallery").text)
    answer = client.post("/logout", data={"csrf_token": token}, follow_redirects=False)
    assert answer.status_code == 303 and answer.headers["location"] == "/login"
    assert SESSION_COOKIE not in client.cookies
    assert [row.key_name for row in trail(app, "logout")] == ["pat-viewer"]
    replay = browser_like()
    replay.cookies[SESSION_COOKIE] = old_cookie
    assert replay.get("/gallery", follow_redirects=False).status_code == 303


def test_logout_without_its_csrf_token_is_refused(
    admin: TestClient, browser_like: Callable[..., TestClient]
) -> None:
    client = browser_like()
    log_in(client, new_key(admin, Role.viewer))
    for data in ({}, {"csrf_token": "guessed"}, {"csrf_token": "ü"}):
        answer = client.post("/logout", data=data, follow_redirects=False)
        assert answer.status_code == 403
        assert answer.headers["content-type"].startswith("text/html")
        assert 'data-code="csrf_failed"' in answer.text
    assert client.get("/gallery", follow_redirects=False).status_code == 200


def test_a_session_change_needs_the_csrf_token_the_page_carries(
    admin: TestClient, browser_like: Callable[..., TestClient]
) -> None:
    client = browser_like()
    log_in(client, new_key(admin, Role.enroller))
    refused = client.post("/subjects", json={"display_name": "No token"})
    assert refused.status_code == 403 and refused.json()["code"] == "csrf_failed"
    token = csrf_of(client.get("/enroll").text)
    created = client.post(
        "/subjects", json={"display_name": "With token"}, headers={"X-CSRF-Token": token}
    )
    assert created.status_code == 201


def test_a_revoked_keys_session_stops_working(
    app: FastAPI, admin: TestClient, browser_like: Callable[..., TestClient]
) -> None:
    client = browser_like()
    log_in(client, new_key(admin, Role.viewer, name="revoked-soon"))
    assert client.get("/gallery", follow_redirects=False).status_code == 200
    revoke_key(app.state.sessions, "revoked-soon", by=SYSTEM)
    answer = client.get("/gallery", follow_redirects=False)
    assert answer.status_code == 303 and answer.headers["location"].startswith("/login")


def test_an_idle_session_ends(
    app: FastAPI, admin: TestClient, browser_like: Callable[..., TestClient]
) -> None:
    """The idle timeout is a minute here; the session's last use is moved back instead of
    waiting it out."""
    client = browser_like()
    log_in(client, new_key(admin, Role.viewer))
    assert client.get("/gallery", follow_redirects=False).status_code == 200
    with session_scope(app.state.sessions) as session:
        session.execute(update(WebSession).values(last_seen_at=utc_now() - timedelta(minutes=2)))
    answer = client.get("/gallery", follow_redirects=False)
    assert answer.status_code == 303 and answer.headers["location"].startswith("/login")


def nav_links(html: str) -> list[str]:
    nav = html[html.index('<nav aria-label="Main">') : html.index("</nav>")]
    return re.findall(r'<a href="([^"]+)"', nav)


@pytest.mark.parametrize(
    ("role", "links"),
    [
        (Role.viewer, ["/gallery"]),
        (Role.investigator, ["/gallery", "/probe"]),
        (Role.enroller, ["/gallery", "/enroll"]),
        (Role.admin, ["/gallery", "/enroll", "/probe", "/admin"]),
    ],
)
def test_the_nav_shows_the_pages_a_role_may_open(
    admin: TestClient, browser_like: Callable[..., TestClient], role: Role, links: list[str]
) -> None:
    client = browser_like()
    log_in(client, new_key(admin, role))
    assert nav_links(client.get("/gallery").text) == links


@pytest.mark.parametrize(
    ("role", "add_photos", "face_deletes", "subject_delete"),
    [
        (Role.viewer, False, False, False),
        (Role.investigator, False, False, False),
        (Role.enroller, True, True, False),
        (Role.admin, True, True, True),
    ],
)
def test_the_subject_page_shows_the_controls_a_role_may_use(
    admin: TestClient,
    browser_like: Callable[..., TestClient],
    faces_dir: Path,
    role: Role,
    add_photos: bool,
    face_deletes: bool,
    subject_delete: bool,
) -> None:
    subject = admin.post("/subjects", json={"display_name": f"Shown to {role}"}).json()
    photo = faces_dir / "lfw_mini" / "Emma_Watson" / "Emma_Watson_0002.jpg"
    enrolled = admin.post(
        f"/subjects/{subject['id']}/photos", files=[("files", (photo.name, photo.read_bytes()))]
    )
    face_id = enrolled.json()["photos"][0]["face"]["id"]
    client = browser_like()
    log_in(client, new_key(admin, role))
    html = client.get(f"/gallery/{subject['id']}").text
    assert (f'href="/enroll?subject={subject["id"]}"' in html) is add_photos
    assert (f'data-delete="/faces/{face_id}"' in html) is face_deletes
    assert (f'data-delete="/subjects/{subject["id"]}"' in html) is subject_delete
    assert ('href="/enroll"' in client.get("/gallery").text) is add_photos


@pytest.mark.parametrize(
    ("role", "path"),
    [
        (Role.viewer, "/enroll"),
        (Role.viewer, "/probe"),
        (Role.investigator, "/admin"),
        (Role.enroller, "/probe"),
        (Role.enroller, "/audit"),
    ],
)
def test_a_page_the_role_may_not_open_is_an_html_403(
    admin: TestClient, browser_like: Callable[..., TestClient], role: Role, path: str
) -> None:
    client = browser_like()
    log_in(client, new_key(admin, role))
    answer = client.get(path)
    assert answer.status_code == 403
    assert answer.headers["content-type"].startswith("text/html")
    assert "<h1>Not allowed</h1>" in answer.text and 'data-code="forbidden"' in answer.text
    api = client.get("/admin/jobs")  # the API keeps answering JSON
    assert api.status_code == 403 and api.json()["code"] == "forbidden"


def test_with_auth_off_every_page_says_so(tmp_path: Path, embedder: FaceEmbedder) -> None:
    settings = Settings(data_dir=tmp_path, models_dir=MODELS, device="cpu", auth="off")
    with TestClient(create_app(settings, embedder=embedder)) as client:
        for path in ("/gallery", "/probe", "/admin", "/login"):
            html = client.get(path).text
            assert 'id="auth-off-banner"' in html, path
            assert "Authentication is off." in html and "answers only this machine" in html
        assert 'name="csrf-token"' not in client.get("/gallery").text
