"""Real `lineup` processes over one gallery: services on their own ports, CLI commands.

What several processes do to one gallery can only be seen with several
processes: each loads its own model and keeps its own index.
"""

import itertools
import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from app.access.keys import create_key
from app.access.roles import Role
from app.audit.actor import SYSTEM
from app.composition import open_database
from app.config import Settings
from app.db.engine import make_session_factory

from access_support import TEST_RATE_LIMITS

REPO = Path(__file__).resolve().parents[1]
LINEUP = Path(sys.executable).parent / "lineup"
START_TIMEOUT_S = 240.0  # two processes importing torch on two cores


def lineup_env(data_dir: Path, **settings: str) -> dict[str, str]:
    """The environment of a `lineup` process on `data_dir`, CPU only, with rate limits that
    suites sending hundreds of requests a second with one key do not meet."""
    env = {
        **os.environ,
        "LINEUP_DATA_DIR": str(data_dir),
        "LINEUP_MODELS_DIR": str(REPO / "models"),
        "LINEUP_DEVICE": "cpu",
        "LINEUP_RATE_LIMITS": json.dumps(TEST_RATE_LIMITS),
        "COLUMNS": "200",
    }
    env.update({f"LINEUP_{name.upper()}": value for name, value in settings.items()})
    return env


def wait_for(condition: Callable[[], bool], *, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up after {timeout:.0f} s waiting for {what}")
        time.sleep(0.2)


# uvicorn logs the port it bound once the app has started.
_RUNNING_ON = re.compile(r"Uvicorn running on (http://127\.0\.0\.1:\d+)")


@dataclass
class Service:
    """One `lineup serve` process and a client for it.

    The service binds a port of its own choosing (`--port 0`) and its log says
    which: a port picked here and bound there later could be taken meanwhile by
    any other socket on the machine, and the test would talk to a stranger.
    """

    process: subprocess.Popen[bytes]
    log: Path
    key: str
    """An admin key of the gallery, sent with every request."""
    _url: str | None = None

    @property
    def url(self) -> str:
        if self._url is None:
            found = _RUNNING_ON.search(self.log.read_text(errors="replace"))
            assert found is not None, f"{self.log} names no port yet"
            self._url = found.group(1)
        return self._url

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.key}"}

    def client(self) -> httpx.Client:
        return httpx.Client(base_url=self.url, timeout=120, headers=self.headers)

    def get(self, path: str) -> Any:
        response = httpx.get(self.url + path, timeout=60, headers=self.headers)
        assert response.status_code == 200, response.text
        return response.json()

    def get_json_post(self, path: str, body: dict[str, Any], *, key: str = "id") -> Any:
        """POST `body` and return `key` of the answer, which must be a success."""
        response = httpx.post(self.url + path, json=body, timeout=60, headers=self.headers)
        assert response.status_code in (200, 201, 202), response.text
        return response.json()[key]

    def is_ready(self) -> bool:
        if self.process.poll() is not None:
            raise AssertionError(f"lineup serve exited early:\n{self.log.read_text()[-3000:]}")
        if _RUNNING_ON.search(self.log.read_text(errors="replace")) is None:
            return False
        try:
            return httpx.get(self.url + "/health/ready", timeout=5).status_code == 200
        except httpx.TransportError:
            return False

    def stop(self, *, kill: bool = False) -> None:
        """SIGTERM (a clean shutdown that saves the index), or SIGKILL."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL if kill else signal.SIGTERM)
        self.process.wait(timeout=60)


def admin_key(env: dict[str, str]) -> str:
    """A new admin key on the gallery of `env` (its database migrated first, as a
    service would), made through the same code as `lineup keys create`."""
    settings = Settings(
        data_dir=Path(env["LINEUP_DATA_DIR"]),
        database_url=env.get("LINEUP_DATABASE_URL"),
        models_dir=Path(env["LINEUP_MODELS_DIR"]),
    )
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    engine = open_database(settings)
    try:
        name = f"tests-{next(_key_numbers)}-{os.getpid()}"
        return create_key(make_session_factory(engine), name=name, role=Role.admin, by=SYSTEM).key
    finally:
        engine.dispose()


_key_numbers = itertools.count(1)


def start_service(env: dict[str, str], log: Path, *extra: str, key: str | None = None) -> Service:
    """Start `lineup serve` on a port it chooses; it answers once its lifespan has run.
    Requests carry `key`, or a new admin key of the gallery."""
    key = key or admin_key(env)
    handle = log.open("wb")
    process = subprocess.Popen(
        [str(LINEUP), "serve", "--port", "0", *extra],
        env=env,
        stdout=handle,
        stderr=subprocess.STDOUT,
        cwd=REPO,
    )
    handle.close()
    return Service(process=process, log=log, key=key)


@contextmanager
def services(env: dict[str, str], logs: Path, count: int, *extra: str) -> Iterator[list[Service]]:
    """`count` services over one gallery, all ready; stopped cleanly on the way out."""
    logs.mkdir(parents=True, exist_ok=True)
    with ExitStack() as stack:
        started: list[Service] = []
        key = admin_key(env)
        for number in range(count):
            service = start_service(env, logs / f"service-{number}.log", *extra, key=key)
            stack.callback(service.stop)
            started.append(service)
        for service in started:
            wait_for(service.is_ready, timeout=START_TIMEOUT_S, what=f"{service.log.name} ready")
        yield started


def run_cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    """`lineup ARGS` in a process of its own; its output is kept for the assertion message."""
    return subprocess.run(
        [str(LINEUP), *args], env=env, capture_output=True, text=True, cwd=REPO, timeout=600
    )


def subject_tree(root: Path, faces_dir: Path, people: dict[str, range]) -> Path:
    """A folder per person (as `lineup enroll` reads) of links to the shared photos."""
    for person, numbers in people.items():
        folder = root / person
        folder.mkdir(parents=True)
        for number in numbers:
            name = f"{person}_{number:04d}.jpg"
            (folder / name).symlink_to(faces_dir / "lfw_mini" / person / name)
    return root


def probe_subjects(service: Service, photo: Path) -> list[tuple[str, str]]:
    """(external id, decision) of the best candidate of each face the photo shows."""
    response = httpx.post(
        service.url + "/probe",
        files={"image": (photo.name, photo.read_bytes(), "image/jpeg")},
        data={"case_reference": "TEST-CASE-1"},
        headers=service.headers,
        timeout=120,
    )
    assert response.status_code == 200, response.text
    return [
        (face["candidates"][0]["subject"]["external_id"], face["decision"])
        if face["candidates"]
        else ("", face["decision"])
        for face in response.json()["faces"]
    ]
