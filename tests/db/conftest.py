"""Databases for the storage tests: a SQLite file per test, and a real PostgreSQL.

The server itself (`postgres_server`) is started by tests/conftest.py.
Migration tests get a fresh database each; table tests share one migrated
database, emptied after each test, because CREATE DATABASE costs half a second.
"""

import shutil
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from sqlalchemy import Connection, Engine, make_url, text
from sqlalchemy.orm import Session, sessionmaker

from app.db.engine import create_engine_for, make_session_factory
from app.db.migrate import upgrade_database
from app.db.tables import Base


@pytest.fixture
def empty_postgres_url(postgres_server: str) -> Iterator[str]:
    """A fresh, empty database on the session's server; dropped afterwards."""
    name = f"lineup_{uuid.uuid4().hex[:12]}"
    with _admin_connection(postgres_server) as admin:
        admin.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield _with_database(postgres_server, name)
    finally:
        with _admin_connection(postgres_server) as admin:
            admin.execute(text(f'DROP DATABASE "{name}" WITH (FORCE)'))


@pytest.fixture(scope="session")
def _migrated_postgres_database(postgres_server: str) -> str:
    """One database migrated to head for the whole session (CREATE DATABASE is slow)."""
    with _admin_connection(postgres_server) as admin:
        admin.execute(text('CREATE DATABASE "lineup_migrated"'))
    url = _with_database(postgres_server, "lineup_migrated")
    upgrade_database(url)
    return url


@pytest.fixture
def migrated_postgres_url(_migrated_postgres_database: str) -> Iterator[str]:
    """The session's migrated database, emptied after each test."""
    yield _migrated_postgres_database
    engine = create_engine_for(_migrated_postgres_database)
    try:
        with engine.begin() as connection:
            tables = ", ".join(table.name for table in Base.metadata.sorted_tables)
            connection.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
    finally:
        engine.dispose()


@contextmanager
def _admin_connection(server_url: str) -> Iterator[Connection]:
    """An autocommit connection, as CREATE and DROP DATABASE need."""
    engine = create_engine_for(server_url).execution_options(isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as connection:
            yield connection
    finally:
        engine.engine.dispose()


def _with_database(server_url: str, name: str) -> str:
    return make_url(server_url).set(database=name).render_as_string(hide_password=False)


@pytest.fixture
def empty_sqlite_url(tmp_path: Path) -> str:
    """A SQLite file that does not exist yet."""
    return f"sqlite:///{tmp_path / 'lineup.db'}"


@pytest.fixture(scope="session")
def _migrated_sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A SQLite file migrated to head once, for tests to copy."""
    path = tmp_path_factory.mktemp("sqlite-template") / "lineup.db"
    upgrade_database(f"sqlite:///{path}")
    return path


@pytest.fixture
def migrated_sqlite_url(tmp_path: Path, _migrated_sqlite_template: Path) -> str:
    """A private copy of the migrated SQLite file."""
    path = tmp_path / "lineup.db"
    shutil.copyfile(_migrated_sqlite_template, path)
    return f"sqlite:///{path}"


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def backend(request: pytest.FixtureRequest) -> str:
    """Each backend Lineup supports; PostgreSQL tests carry the `postgres` marker."""
    name: str = request.param
    return name


@pytest.fixture
def database_url(backend: str, request: pytest.FixtureRequest) -> str:
    """An empty, never-migrated database on `backend`."""
    url: str = request.getfixturevalue(f"empty_{backend}_url")
    return url


@pytest.fixture
def migrated_url(backend: str, request: pytest.FixtureRequest) -> str:
    """An empty database on `backend`, already at the head revision."""
    url: str = request.getfixturevalue(f"migrated_{backend}_url")
    return url


@pytest.fixture
def engine(migrated_url: str) -> Iterator[Engine]:
    """An engine on a migrated database, configured as the app configures it."""
    engine = create_engine_for(migrated_url)
    yield engine
    engine.dispose()


@pytest.fixture
def sessions(engine: Engine) -> sessionmaker[Session]:
    """The session factory the app would use on that database."""
    return make_session_factory(engine)
