"""The platform's own tables, in every service's database: outbox_messages,
inbox_messages, scheduled_jobs (kap_shared.messaging).

This is the `platform` branch of every service's Alembic history: the services'
own revisions hold only their own tables.

Revision ID: platform_0001
Revises:
Create Date: 2026-11-21
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

from kap_shared.migrations import create_indexes, delivery_attempts, drop_tables

revision: str = "platform_0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = ("platform",)


def upgrade() -> None:
    op.create_table(
        "inbox_messages",
        sa.Column("consumer_group", sqlmodel.sql.sqltypes.AutoString(length=128), nullable=False),
        sa.Column("event_id", sqlmodel.sql.sqltypes.AutoString(length=36), nullable=False),
        sa.Column("event_type", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("processed_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("consumer_group", "event_id"),
    )
    op.create_table(
        "outbox_messages",
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("event_id", sqlmodel.sql.sqltypes.AutoString(length=36), nullable=False),
        sa.Column("event_type", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("topic", sqlmodel.sql.sqltypes.AutoString(length=128), nullable=False),
        sa.Column("key", sqlmodel.sql.sqltypes.AutoString(length=128), nullable=False),
        sa.Column("payload", sa.JSON(), nullable=False),
        sa.Column("headers", sa.JSON(), nullable=False),
        sa.Column("created_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column("published_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
        *delivery_attempts(),
        sa.PrimaryKeyConstraint("seq"),
        sa.UniqueConstraint("event_id"),
    )
    create_indexes("outbox_messages", "created_at", "published_at")

    op.create_table(
        "scheduled_jobs",
        sa.Column("job_id", sqlmodel.sql.sqltypes.AutoString(length=36), nullable=False),
        sa.Column("key", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
        sa.Column("kind", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("due_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column("payload", sa.JSON(), nullable=False),
        sa.Column("status", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("created_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column("fired_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
        *delivery_attempts(),
        sa.PrimaryKeyConstraint("job_id"),
        sa.UniqueConstraint("key"),
    )
    create_indexes("scheduled_jobs", "due_at", "kind", "status")


def downgrade() -> None:
    drop_tables("scheduled_jobs", "outbox_messages", "inbox_messages")
