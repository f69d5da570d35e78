"""The gallery change log, ids that are never reused, and reindex leases.

Revision ID: 0003_gallery_changes
Revises: 0002_jobs
Create Date: 2026-12-02

- `gallery_head` (one row) and `gallery_changes`: every change to what can be
  searched, in commit order, so every process's index follows the database.
- SQLite tables are rebuilt with AUTOINCREMENT, so a deleted row's id is
  never handed out again (SQLite otherwise reuses the largest rowid once it is
  deleted). PostgreSQL's sequences never go back, so nothing changes there.
  The rebuild copies every row, which seeds each table's counter with its
  largest id; an id deleted before this migration above the largest one left
  cannot be known any more and may be handed out once.
- `model_versions.building_until` and `building_by`: the lease a running
  reindex renews, and the process holding it.
- `jobs.owner`: the process running a job, as several processes run workers.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003_gallery_changes"
down_revision: str | None = "0002_jobs"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Parents before children, so each copy finds the rows its foreign keys name.
_NEVER_REUSED = ("subjects", "photos", "faces", "embeddings", "jobs")


def upgrade() -> None:
    """Create the change log and its head row, add the lease, stop id reuse on SQLite."""
    op.create_table(
        "gallery_head",
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("seq", sa.BigInteger(), server_default=sa.text("0"), nullable=False),
        sa.CheckConstraint("id = 1", name=op.f("ck_gallery_head_single_row")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_gallery_head")),
    )
    op.execute("INSERT INTO gallery_head (id, seq) VALUES (1, 0)")
    op.create_table(
        "gallery_changes",
        sa.Column("seq", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("kind", sa.String(length=24), nullable=False),
        sa.Column("face_id", sa.BigInteger(), nullable=True),
        sa.Column("subject_id", sa.BigInteger(), nullable=True),
        sa.Column("model_version_id", sa.Integer(), nullable=True),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.CheckConstraint(
            "kind IN ('face_indexed', 'face_removed', 'model_activated')",
            name=op.f("ck_gallery_changes_kind"),
        ),
        sa.PrimaryKeyConstraint("seq", name=op.f("pk_gallery_changes")),
    )
    with op.batch_alter_table("model_versions") as batch:
        batch.add_column(sa.Column("building_until", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("building_by", sa.String(length=255), nullable=True))
    with op.batch_alter_table("jobs") as batch:
        batch.add_column(sa.Column("owner", sa.String(length=255), nullable=True))
    if op.get_bind().dialect.name == "sqlite":
        for table in _NEVER_REUSED:
            with op.batch_alter_table(
                table, recreate="always", table_kwargs={"sqlite_autoincrement": True}
            ):
                pass


def downgrade() -> None:
    """Drop the change log, the lease and job owners; AUTOINCREMENT stays (it loses nothing)."""
    with op.batch_alter_table("jobs") as batch:
        batch.drop_column("owner")
    with op.batch_alter_table("model_versions") as batch:
        batch.drop_column("building_by")
        batch.drop_column("building_until")
    op.drop_table("gallery_changes")
    op.drop_table("gallery_head")
