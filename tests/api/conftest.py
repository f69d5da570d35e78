"""A real Lineup app on a temporary data directory, driven through HTTP."""

from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from app.config import Settings
from app.main import create_app
from app.vision.embedder import FaceEmbedder

from access_support import TEST_RATE_LIMITS, authorize

REPO_MODELS = Path(__file__).resolve().parents[2] / "models"


def settings_for(data_dir: Path, **overrides: object) -> Settings:
    options: dict[str, object] = {"rate_limits": TEST_RATE_LIMITS, **overrides}
    return Settings(data_dir=data_dir, models_dir=REPO_MODELS, device="cpu", **options)


ClientStarter = Callable[..., AbstractContextManager[TestClient]]


@pytest.fixture(scope="session")
def open_client(embedder: FaceEmbedder) -> ClientStarter:
    """Start (or restart) the app on a data directory; the lifespan runs for real, and the
    client sends an admin key of its own (tests of roles and keys make their own)."""

    @contextmanager
    def start(data_dir: Path, **overrides: object) -> Iterator[TestClient]:
        app = create_app(settings_for(data_dir, **overrides), embedder=embedder)
        with TestClient(app) as client:
            yield authorize(client)

    return start
