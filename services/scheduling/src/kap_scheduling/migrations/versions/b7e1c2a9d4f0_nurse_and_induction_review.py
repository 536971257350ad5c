"""sessions.nurse_id (SessionScheduled.nurse_id), sessions.therapist_present (KAP-3);
plans' SPR-SCH-1 induction review

Revision ID: b7e1c2a9d4f0
Revises: d658d7fb7b0e
Create Date: 2026-12-01 15:10:00
"""

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = "b7e1c2a9d4f0"
down_revision: str | None = "d658d7fb7b0e"


def upgrade() -> None:
    with op.batch_alter_table("sessions") as batch:
        batch.add_column(sa.Column("nurse_id", sqlmodel.sql.sqltypes.AutoString(), nullable=True))
        batch.add_column(
            sa.Column("therapist_present", sa.Boolean(), nullable=False, server_default=sa.true())
        )
        batch.create_foreign_key(
            "fk_sessions_nurse_id_clinicians", "clinicians", ["nurse_id"], ["clinician_id"]
        )
    with op.batch_alter_table("plans") as batch:
        batch.add_column(
            sa.Column("induction_review_due_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True)
        )
        batch.add_column(sa.Column("induction_review_sessions", sa.Integer(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("plans") as batch:
        batch.drop_column("induction_review_sessions")
        batch.drop_column("induction_review_due_at")
    with op.batch_alter_table("sessions") as batch:
        batch.drop_constraint("fk_sessions_nurse_id_clinicians", type_="foreignkey")
        batch.drop_column("nurse_id")
        batch.drop_column("therapist_present")
