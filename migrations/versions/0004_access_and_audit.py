"""API keys, browser sessions, rate buckets, the audit trail, and subjects' retention.

Revision ID: 0004_access_and_audit
Revises: 0003_gallery_changes
Create Date: 2026-12-02

- `api_keys`: one row per key, holding only the key's SHA-256 and its public prefix.
- `web_sessions`: browser logins, server-side so every replica sees them.
- `rate_buckets`: token buckets shared by every process.
- `audit_head` (one row), `audit_events` and `audit_subjects`: the hash-chained,
  append-only record of who did what, and the subjects each record names.
- `subjects.retain_until`: when the purge job deletes the subject.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004_access_and_audit"
down_revision: str | None = "0003_gallery_changes"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

GENESIS = "0" * 64


def upgrade() -> None:
    """Create the access and audit tables; add `retain_until` to subjects."""
    _create_keys_and_sessions()
    _create_audit_trail()
    with op.batch_alter_table("subjects") as batch:
        batch.add_column(sa.Column("retain_until", sa.DateTime(timezone=True), nullable=True))
        batch.create_index(batch.f("ix_subjects_retain_until"), ["retain_until"])


def _create_keys_and_sessions() -> None:
    op.create_table(
        "api_keys",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("role", sa.String(length=16), nullable=False),
        sa.Column("prefix", sa.String(length=16), nullable=False),
        sa.Column("secret_hash", sa.String(length=64), nullable=False),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.Column("created_by", sa.String(length=128), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_used_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint(
            "role IN ('viewer', 'investigator', 'enroller', 'admin')",
            name=op.f("ck_api_keys_role"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_api_keys")),
        sa.UniqueConstraint("name", name=op.f("uq_api_keys_name")),
        sa.UniqueConstraint("prefix", name=op.f("uq_api_keys_prefix")),
        sqlite_autoincrement=True,
    )
    op.create_table(
        "web_sessions",
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("key_id", sa.Integer(), nullable=False),
        sa.Column("csrf_token", sa.String(length=64), nullable=False),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.Column("last_seen_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["key_id"],
            ["api_keys.id"],
            name=op.f("fk_web_sessions_key_id_api_keys"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("token_hash", name=op.f("pk_web_sessions")),
    )
    op.create_index(op.f("ix_web_sessions_key_id"), "web_sessions", ["key_id"])
    op.create_table(
        "rate_buckets",
        sa.Column("name", sa.String(length=128), nullable=False),
        sa.Column("tokens", sa.Double(), nullable=False),
        sa.Column("updated", sa.Double(), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_rate_buckets")),
    )


def _create_audit_trail() -> None:
    op.create_table(
        "audit_head",
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("last_id", sa.BigInteger(), server_default=sa.text("0"), nullable=False),
        sa.Column("last_hash", sa.String(length=64), nullable=False),
        sa.Column("anchor_id", sa.BigInteger(), server_default=sa.text("0"), nullable=False),
        sa.Column("anchor_hash", sa.String(length=64), nullable=False),
        sa.CheckConstraint("id = 1", name=op.f("ck_audit_head_single_row")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_head")),
    )
    op.execute(
        "INSERT INTO audit_head (id, last_id, last_hash, anchor_id, anchor_hash) "
        f"VALUES (1, 0, '{GENESIS}', 0, '{GENESIS}')"
    )
    op.create_table(
        "audit_events",
        sa.Column("id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("at", sa.String(length=32), nullable=False),
        sa.Column("key_name", sa.String(length=128), nullable=False),
        sa.Column("role", sa.String(length=16), nullable=False),
        sa.Column("client", sa.String(length=64), nullable=False),
        sa.Column("request_id", sa.String(length=64), nullable=False),
        sa.Column("action", sa.String(length=32), nullable=False),
        sa.Column("outcome", sa.String(length=16), nullable=False),
        sa.Column("case_reference", sa.String(length=200), nullable=True),
        sa.Column("purpose", sa.Text(), nullable=True),
        sa.Column("model_version_id", sa.Integer(), nullable=True),
        sa.Column("subject_ids", sa.Text(), nullable=False),
        sa.Column("details", sa.Text(), nullable=False),
        sa.Column("prev_hash", sa.String(length=64), nullable=False),
        sa.Column("row_hash", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_events")),
    )
    op.create_index(op.f("ix_audit_events_at"), "audit_events", ["at"])
    op.create_index("ix_audit_events_case_reference", "audit_events", ["case_reference"])
    op.create_index("ix_audit_events_action_at", "audit_events", ["action", "at"])
    op.create_index("ix_audit_events_key_name_at", "audit_events", ["key_name", "at"])
    op.create_table(
        "audit_subjects",
        sa.Column("audit_id", sa.BigInteger(), nullable=False),
        sa.Column("subject_id", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["audit_id"],
            ["audit_events.id"],
            name=op.f("fk_audit_subjects_audit_id_audit_events"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("audit_id", "subject_id", name=op.f("pk_audit_subjects")),
    )
    op.create_index(op.f("ix_audit_subjects_subject_id"), "audit_subjects", ["subject_id"])


def downgrade() -> None:
    """Drop what `upgrade` added."""
    with op.batch_alter_table("subjects") as batch:
        batch.drop_index(batch.f("ix_subjects_retain_until"))
        batch.drop_column("retain_until")
    for table in ("audit_subjects", "audit_events", "audit_head"):
        op.drop_table(table)
    for table in ("rate_buckets", "web_sessions", "api_keys"):
        op.drop_table(table)
