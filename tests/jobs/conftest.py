"""A job store on a freshly migrated SQLite file per test."""

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy.orm import Session, sessionmaker

from app.db.engine import create_engine_for, make_session_factory
from app.db.migrate import upgrade_database
from app.jobs.store import JobStore


@pytest.fixture
def sessions(tmp_path: Path) -> Iterator[sessionmaker[Session]]:
    url = f"sqlite:///{tmp_path / 'jobs.db'}"
    upgrade_database(url)
    engine = create_engine_for(url)
    yield make_session_factory(engine)
    engine.dispose()


@pytest.fixture
def store(sessions: sessionmaker[Session]) -> JobStore:
    return JobStore(sessions)
