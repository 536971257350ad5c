"""The `kap.monitoring.vitals.v1` readings, filed in batches (group `records`, as the
other topics): one transaction a batch, its offsets committed behind it
(`kap_shared.messaging.batch_consumer`).

Readings are the one high-volume topic: one transaction, inbox claim and offset commit
per reading took most of a core at 2,000 readings/s (bench/README.md, round 14), on the
machine that also runs the alert path. A reading is filed once by its event id (the
table's key), so a redelivered batch adds nothing and no inbox row is needed. Each
record is validated on its own: a record of another event type is skipped (tolerant
reader), a bad one is dead-lettered without holding up the others. Records are decoded
as monitoring decodes them (`kap_shared.events.vitals_codec`: msgspec types generated
from the contract model, the model itself deciding whatever they do not accept), which
took a third of records' event loop off pydantic under 2,000 readings/s (bench/README.md,
round 21).
"""

from __future__ import annotations

from collections.abc import Sequence

from pydantic import ValidationError

from kap_shared.events import VitalsRecorded, vitals_codec
from kap_shared.events.catalog import EVENT_TYPE_HEADER
from kap_shared.events.topics import MONITORING_VITALS
from kap_shared.messaging.batch_consumer import (
    EMPTY_MESSAGE,
    BatchConsumer,
    BatchOutcome,
    DeadLetter,
    Record,
    decode_error,
    is_other_event_type,
)
from kap_shared.messaging.unit_of_work import UnitOfWork
from kap_shared.service.runtime import ServiceRuntime

from ..config import RecordsSettings
from ..handlers.projection import store_readings

EVENT_TYPE: str = VitalsRecorded.model_fields["event_type"].default


def decode(
    records: Sequence[Record],
) -> tuple[list[vitals_codec.VitalsEvent], list[DeadLetter], int]:
    """The readings, the records to dead-letter, and how many carried another event type."""
    readings: list[vitals_codec.VitalsEvent] = []
    dead: list[DeadLetter] = []
    skipped = 0
    for record in records:
        value = record.value
        if value is None:
            dead.append(DeadLetter(record, EMPTY_MESSAGE))
            continue
        named = next((v for name, v in record.headers if name == EVENT_TYPE_HEADER), None)
        if named is not None and named.decode("utf-8", errors="replace") != EVENT_TYPE:
            skipped += 1
            continue
        try:
            readings.append(vitals_codec.decode(value))
        except ValidationError as exc:
            if is_other_event_type(value, EVENT_TYPE):
                skipped += 1  # no header, but the envelope names another type
            else:
                dead.append(DeadLetter(record, decode_error(value, exc)))
    return readings, dead, skipped


class ReadingsBatchConsumer(BatchConsumer):
    topic = MONITORING_VITALS
    event_type = EVENT_TYPE
    description = "VitalsRecorded, filed in the patient's record in batches (one transaction each)."

    def __init__(self, runtime: ServiceRuntime, settings: RecordsSettings) -> None:
        super().__init__(runtime, settings, group_id=settings.service_name)

    async def _process(self, records: Sequence[Record]) -> BatchOutcome:
        readings, dead, skipped = decode(records)
        outcome = BatchOutcome(dead=dead, skipped=skipped)
        if readings:
            async with UnitOfWork(self.runtime.sessions, self.runtime.relay.notify) as uow:
                outcome.stored = await store_readings(uow, readings)
                await uow.commit()
            outcome.duplicates = len(readings) - outcome.stored
        return outcome
