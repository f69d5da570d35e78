"""Migrations build exactly the schema the ORM declares, on every backend."""

from pathlib import Path

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect, text

from app.db.engine import create_engine_for
from app.db.migrate import (
    current_revision,
    downgrade_database,
    head_revision,
    upgrade_database,
)
from app.db.tables import Base

TABLES = {
    "model_versions",
    "subjects",
    "photos",
    "faces",
    "embeddings",
    "jobs",
    "gallery_head",
    "gallery_changes",
    "api_keys",
    "web_sessions",
    "rate_buckets",
    "audit_head",
    "audit_events",
    "audit_subjects",
}


def _schema_differences(url: str) -> list[object]:
    engine = create_engine_for(url)
    try:
        with engine.connect() as connection:
            context = MigrationContext.configure(connection, opts={"compare_type": True})
            return list(compare_metadata(context, Base.metadata))
    finally:
        engine.dispose()


def _table_names(url: str) -> set[str]:
    engine = create_engine_for(url)
    try:
        return set(inspect(engine).get_table_names())
    finally:
        engine.dispose()


def test_head_is_the_access_and_audit_revision() -> None:
    assert head_revision() == "0004_access_and_audit"


def test_upgrade_builds_the_orm_schema(database_url: str) -> None:
    assert current_revision(database_url) is None

    upgrade_database(database_url)

    assert current_revision(database_url) == head_revision()
    assert _table_names(database_url) == TABLES | {"alembic_version"}
    assert _schema_differences(database_url) == []


def test_upgrade_at_head_changes_nothing(migrated_url: str) -> None:
    upgrade_database(migrated_url)

    assert current_revision(migrated_url) == head_revision()
    assert _schema_differences(migrated_url) == []


def test_downgrade_to_base_drops_every_table(database_url: str) -> None:
    upgrade_database(database_url)
    downgrade_database(database_url, "base")

    assert current_revision(database_url) is None
    assert _table_names(database_url) <= {"alembic_version"}
    upgrade_database(database_url)
    assert _schema_differences(database_url) == []


def test_one_active_model_is_a_partial_unique_index(migrated_url: str) -> None:
    engine = create_engine_for(migrated_url)
    try:
        indexes = {ix["name"]: ix for ix in inspect(engine).get_indexes("model_versions")}
    finally:
        engine.dispose()

    active = indexes["uq_model_versions_active"]
    assert active["unique"]
    assert active["column_names"] == ["active"]
    where = active.get("dialect_options", {})
    assert any(key.endswith("_where") for key in where), where


def test_a_gallery_from_before_the_change_log_keeps_its_rows_and_stops_reusing_ids(
    tmp_path: Path,
) -> None:
    """SQLite reused the largest deleted rowid before 0003; afterwards no id comes back,
    and the rebuilt tables keep every row and every child pointing at its parent."""
    url = f"sqlite:///{tmp_path / 'old.db'}"
    upgrade_database(url, "0002_jobs")
    engine = create_engine_for(url)
    with engine.begin() as connection:
        for number in (1, 2, 3):
            connection.execute(
                text("INSERT INTO subjects (display_name, details) VALUES (:n, '{}')"),
                {"n": f"subject {number}"},
            )
        connection.execute(
            text(
                "INSERT INTO photos (subject_id, sha256, original_filename, stored_path,"
                " size_bytes, width, height) VALUES (3, 'x', 'a.jpg', 'photos/1.jpg', 1, 1, 1)"
            )
        )
    engine.dispose()

    upgrade_database(url)

    engine = create_engine_for(url)
    with engine.begin() as connection:
        kept = connection.execute(text("SELECT subject_id FROM photos")).scalars().all()
        connection.execute(text("DELETE FROM photos"))
        connection.execute(text("DELETE FROM subjects WHERE id = 3"))
        connection.execute(
            text("INSERT INTO subjects (display_name, details) VALUES ('new', '{}')")
        )
        ids = connection.execute(text("SELECT id FROM subjects ORDER BY id")).scalars().all()
        head = connection.execute(text("SELECT seq FROM gallery_head")).scalar_one()
    engine.dispose()
    assert kept == [3]
    assert ids == [1, 2, 4]
    assert head == 0
