"""Engines set SQLite up like a server; sessions commit or roll back as a unit."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session, sessionmaker

from app.db.engine import SQLITE_BUSY_TIMEOUT_MS, create_engine_for, session_scope
from app.db.migrate import MIGRATIONS_DIR, current_revision, head_revision
from app.db.tables import Subject


def test_sqlite_connections_get_the_pragmas(tmp_path: Path) -> None:
    engine = create_engine_for(f"sqlite:///{tmp_path / 'nested' / 'dir' / 'lineup.db'}")
    try:
        with engine.connect() as connection:
            pragma = connection.exec_driver_sql
            assert pragma("PRAGMA foreign_keys").scalar() == 1
            assert pragma("PRAGMA journal_mode").scalar() == "wal"
            assert pragma("PRAGMA busy_timeout").scalar() == SQLITE_BUSY_TIMEOUT_MS
    finally:
        engine.dispose()
    assert (tmp_path / "nested" / "dir" / "lineup.db").is_file()


def test_session_scope_commits(engine: Engine, sessions: sessionmaker[Session]) -> None:
    with session_scope(sessions) as session:
        session.add(Subject(display_name="ada"))
    with sessions() as session:
        assert session.scalar(select(func.count()).select_from(Subject)) == 1


def test_session_scope_rolls_back_on_error(sessions: sessionmaker[Session]) -> None:
    with pytest.raises(RuntimeError), session_scope(sessions) as session:
        session.add(Subject(display_name="ada"))
        session.flush()
        raise RuntimeError("enrolment failed half way")
    with sessions() as session:
        assert session.scalar(select(func.count()).select_from(Subject)) == 0


def test_alembic_cli_reads_the_url_from_the_environment(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    env = {**os.environ, "LINEUP_DATABASE_URL": url}
    subprocess.run(
        [sys.executable, "-m", "alembic", "upgrade", "head"],
        cwd=MIGRATIONS_DIR.parent,
        env=env,
        check=True,
        capture_output=True,
    )
    assert current_revision(url) == head_revision()
