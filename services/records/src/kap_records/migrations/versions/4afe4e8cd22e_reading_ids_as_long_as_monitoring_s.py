"""Reading ids as long as monitoring's

Revision ID: 4afe4e8cd22e
Revises: ddc765f7cfef
Create Date: 2026-12-03 13:01:46.697803

Monitoring stores reading ids of up to 100 characters (READING_ID_MAX_LENGTH; its POST
accepts no longer one), records' column took 64: on PostgreSQL a reading with a longer
id was refused by records' insert and dead-lettered, missing from the care record.
"""

import sqlalchemy as sa
from alembic import op
from sqlmodel.sql.sqltypes import AutoString

revision: str = "4afe4e8cd22e"
down_revision: str | None = "ddc765f7cfef"


def upgrade() -> None:
    with op.batch_alter_table("vitals_readings", schema=None) as batch_op:
        batch_op.alter_column(
            "reading_id",
            existing_type=sa.VARCHAR(length=64),
            type_=AutoString(length=100),
            existing_nullable=False,
        )


def downgrade() -> None:
    with op.batch_alter_table("vitals_readings", schema=None) as batch_op:
        batch_op.alter_column(
            "reading_id",
            existing_type=AutoString(length=100),
            type_=sa.VARCHAR(length=64),
            existing_nullable=False,
        )
