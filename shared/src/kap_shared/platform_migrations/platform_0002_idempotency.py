"""Idempotency keys: the stored first response of each keyed request (CONTRACT 6.4,
kap_shared.messaging.idempotency), in every service's database.

Revision ID: platform_0002
Revises: platform_0001
Create Date: 2026-12-01
"""

import sqlalchemy as sa
import sqlmodel
from alembic import op

from kap_shared.migrations import create_indexes, drop_tables

revision: str = "platform_0002"
down_revision: str | None = "platform_0001"


def upgrade() -> None:
    op.create_table(
        "idempotency_keys",
        sa.Column("caller", sqlmodel.sql.sqltypes.AutoString(length=128), nullable=False),
        sa.Column("key", sqlmodel.sql.sqltypes.AutoString(length=255), nullable=False),
        sa.Column("request_hash", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("method", sqlmodel.sql.sqltypes.AutoString(length=8), nullable=False),
        sa.Column("path", sqlmodel.sql.sqltypes.AutoString(length=512), nullable=False),
        sa.Column("status_code", sa.Integer(), nullable=False),
        sa.Column("content_type", sqlmodel.sql.sqltypes.AutoString(length=128), nullable=False),
        sa.Column("body", sa.LargeBinary(), nullable=False),
        sa.Column("created_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("caller", "key"),
    )
    create_indexes("idempotency_keys", "created_at")


def downgrade() -> None:
    drop_tables("idempotency_keys")
