"""One reading per reading_id

Revision ID: ddc765f7cfef
Revises: 1cb90171e581
Create Date: 2026-12-03 11:53:27.986123

Records filed a reading once per event id, monitoring once per `reading_id`
(MON-READING-1): a gateway re-sending a reading under a new event id was counted twice
in the record (its vitals summary, the PMF's readings, the FHIR Observations). The
repeats already filed are removed first. Which row was read first is not kept, so the
one with the smallest event id stays: a re-sent reading carries the same values.
"""

from alembic import op

revision: str = "ddc765f7cfef"
down_revision: str | None = "1cb90171e581"

DROP_REPEATS = """
DELETE FROM vitals_readings WHERE EXISTS (
    SELECT 1 FROM vitals_readings AS kept
    WHERE kept.reading_id = vitals_readings.reading_id
      AND kept.event_id < vitals_readings.event_id
)
"""


def upgrade() -> None:
    op.execute(DROP_REPEATS)
    with op.batch_alter_table("vitals_readings", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_vitals_readings_reading_id"))
        batch_op.create_index(
            batch_op.f("ix_vitals_readings_reading_id"), ["reading_id"], unique=True
        )


def downgrade() -> None:
    with op.batch_alter_table("vitals_readings", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_vitals_readings_reading_id"))
        batch_op.create_index(
            batch_op.f("ix_vitals_readings_reading_id"), ["reading_id"], unique=False
        )
