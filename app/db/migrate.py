"""Bringing a database to the current schema with Alembic, from Python.

The app and the tests call these instead of the `alembic` CLI; both use the
same `migrations/` folder at the repository root.
"""

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory

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
    """Apply every migration up to `revision`; a database already there is left as is."""
    command.upgrade(alembic_config(url), revision)


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
