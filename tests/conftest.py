"""Fixtures shared by the whole test suite: the photos, the real models loaded once,
and a throwaway PostgreSQL server.

The PostgreSQL server is started once per session from the distribution's
binaries (`apt-get install postgresql` puts them under /usr/lib/postgresql),
in a throwaway directory, listening on 127.0.0.1 only. initdb and pg_ctl
refuse to run as root, so under root they run as the `postgres` system user.
"""

import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import torch
from sqlalchemy import create_engine, make_url, text

from app.vision.backbones.base import Backbone
from app.vision.backbones.registry import create_backbone
from app.vision.detection import MtcnnDetector
from app.vision.embedder import FaceEmbedder

# The shared face photos sit beside the project root on every machine (see shared/faces/README.md).
FACES_DIR = Path(__file__).resolve().parents[1].parent / "shared" / "faces"
CPU = torch.device("cpu")


@pytest.fixture(scope="session")
def faces_dir() -> Path:
    """Root of the shared, labelled face photos (`lfw_mini/`, `johns/`, ...)."""
    assert FACES_DIR.is_dir(), f"shared face photos missing at {FACES_DIR}"
    return FACES_DIR


@pytest.fixture(scope="session")
def detector() -> MtcnnDetector:
    return MtcnnDetector(device=CPU)


@pytest.fixture(scope="session")
def dlib_backbone() -> Backbone:
    return create_backbone("dlib-resnet", device=CPU)


@pytest.fixture(scope="session")
def embedder(detector: MtcnnDetector, dlib_backbone: Backbone) -> FaceEmbedder:
    return FaceEmbedder(detector=detector, backbone=dlib_backbone)


_PG_USER = "postgres"


def _postgres_bin_dir() -> Path | None:
    """The newest installed PostgreSQL's bin folder, or None."""
    found = sorted(
        glob.glob("/usr/lib/postgresql/*/bin/initdb"),
        key=lambda path: int(Path(path).parts[-3]),
    )
    if found:
        return Path(found[-1]).parent
    on_path = shutil.which("initdb")
    return Path(on_path).parent if on_path else None


def _as_server_user(args: list[str]) -> list[str]:
    """Prefix a command so that it runs as the postgres user when we are root."""
    if os.geteuid() != 0:
        return args
    return ["runuser", "-u", _PG_USER, "--", *args]


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def _make_server_dir() -> Path:
    """A private temp dir the server user owns (pytest's own tmp dirs are root-only)."""
    root = Path(tempfile.mkdtemp(prefix="lineup-pg-"))
    if os.geteuid() == 0:
        try:
            user = pwd.getpwnam(_PG_USER)
        except KeyError:
            shutil.rmtree(root)
            pytest.skip("running as root but there is no 'postgres' user to run the server as")
        os.chown(root, user.pw_uid, user.pw_gid)
    return root


def _run(args: list[str]) -> None:
    result = subprocess.run(_as_server_user(args), capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(args)} failed:\n{result.stdout}\n{result.stderr}")


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[str]:
    """Start a throwaway PostgreSQL server; yield the URL of its `postgres` database."""
    bin_dir = _postgres_bin_dir()
    if bin_dir is None:
        pytest.skip("PostgreSQL binaries not found; install them with: apt-get install postgresql")
    root = _make_server_dir()
    data, log, port = root / "data", root / "server.log", _free_port()
    try:
        initdb = [str(bin_dir / "initdb"), "-D", str(data), "-U", _PG_USER, "-A", "trust"]
        _run([*initdb, "-E", "UTF8", "--locale=C", "--no-sync"])
        options = f"-F -k {root} -p {port} -c listen_addresses=127.0.0.1"
        pg_ctl = [str(bin_dir / "pg_ctl"), "-D", str(data), "-l", str(log)]
        _run([*pg_ctl, "-o", options, "-w", "-t", "60", "start"])
    except BaseException:
        shutil.rmtree(root, ignore_errors=True)
        raise
    try:
        yield f"postgresql+psycopg://{_PG_USER}@127.0.0.1:{port}/postgres"
    finally:
        _run([*pg_ctl, "-m", "immediate", "-w", "stop"])
        shutil.rmtree(root, ignore_errors=True)


@contextmanager
def fresh_database(server_url: str, prefix: str) -> Iterator[str]:
    """A new, empty database on the server at `server_url`; dropped on the way out."""
    name = f"{prefix}_{uuid.uuid4().hex[:8]}"
    admin = create_engine(server_url, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as connection:
            connection.execute(text(f'CREATE DATABASE "{name}"'))
        yield make_url(server_url).set(database=name).render_as_string(hide_password=False)
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE "{name}" WITH (FORCE)'))
    finally:
        admin.dispose()


@pytest.fixture
def postgres_url(postgres_server: str) -> Iterator[str]:
    """A fresh PostgreSQL database for one test."""
    with fresh_database(postgres_server, "lineup_test") as url:
        yield url


@pytest.fixture(scope="module")
def module_postgres_url(postgres_server: str) -> Iterator[str]:
    """A fresh PostgreSQL database shared by one test module."""
    with fresh_database(postgres_server, "lineup_module") as url:
        yield url
