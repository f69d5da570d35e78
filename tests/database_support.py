"""Migrated databases for the tests below HTTP (`tests/access`, `tests/audit`).

Each test gets its own database on each backend, copied from one migrated
once per session: migrating takes seconds, a copy milliseconds. A SQLite copy
is a file copy; a PostgreSQL copy is `CREATE DATABASE ... TEMPLATE`. The conftest
of each folder imports the fixtures below, so both folders share one definition.
"""

import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, make_url, text
from sqlalchemy.orm import Session, sessionmaker

from app.db.engine import create_engine_for, make_session_factory
from app.db.migrate import upgrade_database


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A SQLite file at the head revision, for tests to copy."""
    path = tmp_path_factory.mktemp("migrated-sqlite") / "lineup.db"
    upgrade_database(f"sqlite:///{path}")
    return path


@pytest.fixture(scope="session")
def postgres_template(postgres_server: str) -> Iterator[str]:
    """The name of a PostgreSQL database at the head revision, for tests to copy."""
    name = f"lineup_template_{uuid.uuid4().hex[:8]}"
    _admin(postgres_server, f'CREATE DATABASE "{name}"')
    upgrade_database(_on(postgres_server, name))
    yield name
    _admin(postgres_server, f'DROP DATABASE "{name}" WITH (FORCE)')


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh database at the head revision on each backend Lineup supports."""
    if request.param == "sqlite":
        path = tmp_path / "lineup.db"
        shutil.copyfile(request.getfixturevalue("sqlite_template"), path)
        yield f"sqlite:///{path}"
        return
    server: str = request.getfixturevalue("postgres_server")
    template: str = request.getfixturevalue("postgres_template")
    name = f"lineup_{uuid.uuid4().hex[:12]}"
    _admin(server, f'CREATE DATABASE "{name}" TEMPLATE "{template}"')
    try:
        yield _on(server, name)
    finally:
        _admin(server, f'DROP DATABASE "{name}" WITH (FORCE)')


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    """An engine on the fresh database, configured as the app configures it."""
    engine = create_engine_for(database_url)
    yield engine
    engine.dispose()


@pytest.fixture
def sessions(engine: Engine) -> sessionmaker[Session]:
    """The session factory the app would use on that database."""
    return make_session_factory(engine)


def _admin(server_url: str, statement: str) -> None:
    """Run `statement` outside a transaction, as CREATE and DROP DATABASE need."""
    engine = create_engine_for(server_url).execution_options(isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as connection:
            connection.execute(text(statement))
    finally:
        engine.engine.dispose()


def _on(server_url: str, name: str) -> str:
    return make_url(server_url).set(database=name).render_as_string(hide_password=False)
