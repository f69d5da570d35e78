"""Fixtures for the pages: a TestClient app, a real uvicorn server, and headless Chromium.

Browser tests drive Debian's `chromium` through Playwright, with the flags that
keep it off the network. Without /usr/bin/chromium they are skipped, except
under CI (`CI=true`), where `.ci/run` installs it and a skip would hide a gap.
"""

import os
import shutil
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import uvicorn
from fastapi.testclient import TestClient
from playwright.sync_api import Browser, ConsoleMessage, Error, Page, sync_playwright

from app.config import Settings
from app.main import create_app
from app.vision.embedder import FaceEmbedder

REPO_MODELS = Path(__file__).resolve().parents[2] / "models"
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
LAPTOP = {"width": 1280, "height": 800}


def settings_for(data_dir: Path) -> Settings:
    """Settings over `data_dir`, with a models folder of dlib-resnet's card alone, so the
    pages show the same models whatever else has been trained into the repository's."""
    models = data_dir / "models"
    (models / "dlib-resnet").mkdir(parents=True, exist_ok=True)
    shutil.copy(REPO_MODELS / "dlib-resnet" / "card.json", models / "dlib-resnet")
    return Settings(data_dir=data_dir, models_dir=models, device="cpu")


@pytest.fixture(scope="module")
def web_data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("web-data")


@pytest.fixture(scope="module")
def client(web_data_dir: Path, embedder: FaceEmbedder) -> Iterator[TestClient]:
    """The app on a fresh data directory, its lifespan run for real."""
    app = create_app(settings_for(web_data_dir), embedder=embedder)
    with TestClient(app) as test_client:
        yield test_client


@pytest.fixture(scope="module")
def live_server(web_data_dir: Path, embedder: FaceEmbedder) -> Iterator[str]:
    """A real uvicorn server on 127.0.0.1, in a thread; yields its base URL."""
    app = create_app(settings_for(web_data_dir), embedder=embedder)
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


@pytest.fixture
def page(browser: Browser, live_server: str, page_errors: PageErrors) -> Iterator[Page]:
    """A laptop-sized page on the live server; fails the test on any console or page error."""
    context = browser.new_context(viewport=LAPTOP, base_url=live_server)
    context.set_default_timeout(15_000)
    new_page = context.new_page()
    new_page.on("console", page_errors.console)
    new_page.on("pageerror", page_errors.page_error)
    yield new_page
    context.close()
    assert page_errors.messages == [], "\n".join(page_errors.messages)


@pytest.fixture(scope="session")
def screenshots_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Where the run saves its screenshots: LINEUP_SCREENSHOTS_DIR (docs/screenshots to
    refresh the README's copies), else a temporary folder."""
    chosen = os.environ.get("LINEUP_SCREENSHOTS_DIR")
    folder = Path(chosen) if chosen else tmp_path_factory.mktemp("screenshots")
    folder.mkdir(parents=True, exist_ok=True)
    return folder
