"""Alembic environment for Lineup.

The URL comes from the config's `sqlalchemy.url` when the app migrates itself
(app.db.migrate), or from LINEUP_DATABASE_URL when the `alembic` CLI runs.
"""

import logging.config
import os
from typing import Any

from alembic import context
from sqlalchemy import Connection

from app.db.engine import create_engine_for
from app.db.tables import Base

config = context.config
target_metadata = Base.metadata


def _database_url() -> str:
    """The URL set programmatically, else the one in the environment."""
    url = config.get_main_option("sqlalchemy.url") or os.environ.get("LINEUP_DATABASE_URL")
    if not url:
        raise RuntimeError(
            "no database URL: set LINEUP_DATABASE_URL, e.g. sqlite:///data/lineup.db"
        )
    return url


def _configure(**kwargs: Any) -> None:
    """Configure Alembic the same way online and offline."""
    context.configure(
        target_metadata=target_metadata,
        # SQLite can't ALTER most things; batch mode rebuilds the table instead.
        render_as_batch=True,
        compare_type=True,
        **kwargs,
    )


def run_migrations_offline() -> None:
    """Emit the SQL to stdout instead of running it (`alembic upgrade --sql`)."""
    _configure(url=_database_url(), literal_binds=True, dialect_opts={"paramstyle": "named"})
    with context.begin_transaction():
        context.run_migrations()


def _run_on(connection: Connection) -> None:
    """Run every pending migration in one transaction on `connection`."""
    _configure(connection=connection)
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    """Run the migrations on a live connection."""
    engine = create_engine_for(_database_url())
    try:
        with engine.connect() as connection:
            if connection.dialect.name != "sqlite":
                _run_on(connection)
                return
            # Batch mode copies a table and drops the old one; with foreign keys
            # on, that DROP would cascade and delete every child row.
            connection.exec_driver_sql("PRAGMA foreign_keys=OFF")
            connection.commit()
            _run_on(connection)
            _check_foreign_keys(connection)
    finally:
        engine.dispose()


def _check_foreign_keys(connection: Connection) -> None:
    """Fail loudly if a migration left rows pointing at nothing."""
    broken = connection.exec_driver_sql("PRAGMA foreign_key_check").fetchall()
    if broken:
        raise RuntimeError(f"migration left dangling foreign keys: {broken[:10]}")


if config.config_file_name is not None:
    logging.config.fileConfig(config.config_file_name, disable_existing_loggers=False)

if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
