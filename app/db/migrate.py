"""Bringing a database to the current schema with Alembic, from Python.

The app and the tests call these instead of the `alembic` CLI; both use the
same `migrations/` folder at the repository root.
"""

import fcntl
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import make_url

import app
from app.db.engine import create_engine_for

MIGRATIONS_DIR = Path(app.__file__).resolve().parent.parent / "migrations"


def alembic_config(url: str) -> Config:
    """An Alembic config pointing at Lineup's migrations and at `url`.

    No ini file is read, so running migrations leaves the caller's logging
    configuration alone.
    """
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    # The config is a ConfigParser: a literal % (URL-encoded passwords) must be doubled.
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


def upgrade_database(url: str, revision: str = "head") -> None:
    """Apply every migration up to `revision`; a database already there is left as is.

    Several processes may start at once over one database (`lineup serve --workers`,
    replicas): one migrates while the others wait for it, then find nothing to do.
    """
    with _migration_lock(url):
        command.upgrade(alembic_config(url), revision)


# Any constant shared by every Lineup process; it names the lock, nothing more.
_POSTGRES_LOCK_KEY = 0x6C696E657570  # "lineup"


@contextmanager
def _migration_lock(url: str) -> Iterator[None]:
    """Hold a lock every process migrating `url` takes: a lock file beside an SQLite
    database, an advisory lock on a PostgreSQL server."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite":
        engine = create_engine_for(url)
        try:
            with engine.connect() as connection:
                connection.exec_driver_sql(f"SELECT pg_advisory_lock({_POSTGRES_LOCK_KEY})")
                try:
                    yield
                finally:
                    connection.exec_driver_sql(f"SELECT pg_advisory_unlock({_POSTGRES_LOCK_KEY})")
        finally:
            engine.dispose()
        return
    database = parsed.database
    if not database or database == ":memory:" or database.startswith("file:"):
        yield
        return
    lock_path = Path(database).with_name(Path(database).name + ".migrate-lock")
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    with open(lock_path, "a+b") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def downgrade_database(url: str, revision: str) -> None:
    """Revert migrations down to `revision` (`"base"` drops every table)."""
    command.downgrade(alembic_config(url), revision)


def current_revision(url: str) -> str | None:
    """The revision the database is at, or None if it has never been migrated."""
    engine = create_engine_for(url)
    try:
        with engine.connect() as connection:
            return MigrationContext.configure(connection).get_current_revision()
    finally:
        engine.dispose()


def head_revision() -> str | None:
    """The newest revision shipped in `migrations/`."""
    return ScriptDirectory.from_config(alembic_config("")).get_current_head()
