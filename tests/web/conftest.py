"""Fixtures for the pages: a TestClient app, a real uvicorn server, and headless Chromium.

Browser tests drive Debian's `chromium` through Playwright, with the flags that
keep it off the network. Without /usr/bin/chromium they are skipped, except
under CI (`CI=true`), where `.ci/run` installs it and a skip would hide a gap.
Every browser page logs in through the real login page with a key of its own.
"""

import itertools
import os
import re
import shutil
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import uvicorn
from fastapi import FastAPI
from fastapi.testclient import TestClient
from playwright.sync_api import (
    Browser,
    BrowserContext,
    ConsoleMessage,
    Error,
    Page,
    expect,
    sync_playwright,
)

from app.access.keys import create_key
from app.access.roles import Role
from app.audit.actor import SYSTEM
from app.config import Settings
from app.main import create_app
from app.vision.embedder import FaceEmbedder

from access_support import authorize

REPO_MODELS = Path(__file__).resolve().parents[2] / "models"
LAPTOP = {"width": 1280, "height": 800}
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


def settings_for(data_dir: Path, **overrides: object) -> Settings:
    """Settings over `data_dir`, with a models folder of dlib-resnet's card alone, so the
    pages show the same models whatever else has been trained into the repository's."""
    models = data_dir / "models"
    (models / "dlib-resnet").mkdir(parents=True, exist_ok=True)
    shutil.copy(REPO_MODELS / "dlib-resnet" / "card.json", models / "dlib-resnet")
    return Settings(data_dir=data_dir, models_dir=models, device="cpu", **overrides)


@pytest.fixture(scope="module")
def web_data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("web-data")


@pytest.fixture(scope="module")
def client(web_data_dir: Path, embedder: FaceEmbedder) -> Iterator[TestClient]:
    """The app on a fresh data directory, its lifespan run for real; the client sends an
    admin key with every request."""
    app = create_app(settings_for(web_data_dir), embedder=embedder)
    with TestClient(app) as test_client:
        yield authorize(test_client)


@pytest.fixture(scope="module")
def live_app(web_data_dir: Path, embedder: FaceEmbedder) -> FastAPI:
    """The app the live server runs; its database makes the keys browser tests log in with."""
    return create_app(settings_for(web_data_dir), embedder=embedder)


_key_names = itertools.count(1)


@pytest.fixture(scope="module")
def live_key(live_server: str, live_app: FastAPI) -> Callable[[Role], str]:
    """Make a new key of a role on the live server's database; answers the key."""

    def make(role: Role) -> str:
        name = f"browser-{role}-{next(_key_names)}"
        return create_key(live_app.state.sessions, name=name, role=role, by=SYSTEM).key

    return make


@pytest.fixture(scope="module")
def live_server(live_app: FastAPI) -> Iterator[str]:
    """A real uvicorn server on 127.0.0.1, in a thread; yields its base URL."""
    app = live_app
    # Port 0: the server binds a free port itself, so no other socket can take it first.
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", lifespan="on")
    )
    thread = threading.Thread(target=server.run, name="lineup-test-server", daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the test server did not start")
        time.sleep(0.05)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(30)


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    if not CHROMIUM.exists():
        if os.environ.get("CI") == "true":
            pytest.fail(f"{CHROMIUM} is missing under CI; .ci/run installs it with apt")
        pytest.skip(f"{CHROMIUM} is missing; install it with: apt-get install chromium")
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_FLAGS)
        yield chromium
        chromium.close()


class PageErrors:
    """Console errors and uncaught exceptions of one page; the test fails if any remain."""

    def __init__(self) -> None:
        self.messages: list[str] = []

    def console(self, message: ConsoleMessage) -> None:
        if message.type == "error":
            self.messages.append(f"console: {message.text} ({message.location.get('url')})")

    def page_error(self, error: Error) -> None:
        self.messages.append(f"page error: {error}")

    def expect(self, fragment: str) -> None:
        """Drop the errors a test provoked on purpose (they contain `fragment`)."""
        self.messages = [message for message in self.messages if fragment not in message]


@pytest.fixture
def page_errors() -> PageErrors:
    return PageErrors()


@pytest.fixture
def expect_page_error(page_errors: PageErrors) -> Callable[[str], None]:
    """Call with a fragment of an error the test provokes on purpose, after provoking it."""
    return page_errors.expect


def log_in(page: Page, key: str, *, next_path: str = "/gallery") -> None:
    """Log in through the login page with `key`, as a person would; ends on `next_path`."""
    page.goto(f"/login?next={next_path}")
    page.get_by_label("API key").fill(key)
    page.get_by_role("button", name="Log in").click()
    expect(page).to_have_url(re.compile(f"^[^?]*//[^/]+{re.escape(next_path)}$"))


PageOpener = Callable[..., Page]


@pytest.fixture(scope="module")
def log_in_page(
    browser: Browser, live_server: str, live_key: Callable[[Role], str]
) -> Iterator[PageOpener]:
    """Open a laptop-sized page in a browser context of its own, logged in through the login
    page with a new key of a role; `errors` listens from before the login. The contexts close
    with the module."""
    contexts: list[BrowserContext] = []

    def open_as(role: Role, errors: PageErrors | None = None) -> Page:
        context = browser.new_context(viewport=LAPTOP, base_url=live_server)
        context.set_default_timeout(15_000)
        contexts.append(context)
        new_page = context.new_page()
        if errors is not None:
            new_page.on("console", errors.console)
            new_page.on("pageerror", errors.page_error)
        log_in(new_page, live_key(role))
        return new_page

    yield open_as
    for context in contexts:
        context.close()


@pytest.fixture
def open_page(log_in_page: PageOpener, page_errors: PageErrors) -> Iterator[PageOpener]:
    """`log_in_page` for one test, whose pages close after it; fails the test on any console
    or page error (a script or style the Content-Security-Policy refused among them)."""
    pages: list[Page] = []

    def open_as(role: Role) -> Page:
        pages.append(log_in_page(role, page_errors))
        return pages[-1]

    yield open_as
    for opened in pages:
        opened.context.close()
    assert page_errors.messages == [], "\n".join(page_errors.messages)


@pytest.fixture
def page(open_page: PageOpener) -> Page:
    """A page logged in as an admin."""
    return open_page(Role.admin)


@pytest.fixture(scope="session")
def screenshots_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Where the run saves its screenshots: LINEUP_SCREENSHOTS_DIR (docs/screenshots to
    refresh the README's copies), else a temporary folder."""
    chosen = os.environ.get("LINEUP_SCREENSHOTS_DIR")
    folder = Path(chosen) if chosen else tmp_path_factory.mktemp("screenshots")
    folder.mkdir(parents=True, exist_ok=True)
    return folder
