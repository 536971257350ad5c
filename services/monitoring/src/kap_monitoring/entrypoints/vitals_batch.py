"""The `kap.monitoring.vitals.v1` consumer: readings in batches
(`kap_shared.messaging.batch_consumer`: one transaction a batch, dead letters after the
commit, offsets committed behind it, retries and the one-by-one fallback).

1. its own consumer group, `monitoring-vitals`, so that the low-volume event
   subscribers joining or leaving never rebalance the vitals stream;
2. each record is validated on its own against the contract (`vitals_codec`: a
   strict msgspec decoder generated from the VitalsRecorded model, the model itself
   deciding whatever the fast path does not accept): a bad record is set aside for the dead-letter
   topic and does not poison the others; a record of another event type (one a
   producer added after this consumer was built) is skipped, never dead-lettered
   (tolerant reader: `event_type` header first, the envelope's field otherwise);
   a reading this service published itself (its `producer` header: the echo of
   `POST .../vitals`, stored with its rules applied in the transaction that wrote
   its outbox row) is a repeat, settled without decoding or reading the database;
3. the valid ones go through `VitalsIngest` in ONE database transaction: sessions
   locked and loaded once, readings inserted in bulk with repeats dropped by
   reading_id in the same statement, rules evaluated in memory, alerts/outbox/rule
   state written in bulk.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Sequence

from pydantic import ValidationError

from kap_shared.events import vitals_codec
from kap_shared.events.catalog import EVENT_TYPE_HEADER
from kap_shared.events.topics import MONITORING_VITALS
from kap_shared.logging import get_logger
from kap_shared.messaging.batch_consumer import (
    EMPTY_MESSAGE,
    BatchConsumer,
    BatchOutcome,
    DeadLetter,
    Record,
    decode_error,
    is_other_event_type,
)
from kap_shared.messaging.errors import PermanentError
from kap_shared.messaging.outbox import PRODUCER_HEADER
from kap_shared.messaging.unit_of_work import UnitOfWork
from kap_shared.service.runtime import ServiceRuntime

from ..config import MonitoringSettings
from ..domain.vitals import EPOCH, ONE_MICROSECOND, Reading
from ..handlers.alerts import PRODUCER
from ..handlers.vitals import Incoming, VitalsIngest

log = get_logger(__name__)

EVENT_TYPE = "VitalsRecorded"


def decode(
    records: Sequence[Record], own_producer: str | None = None
) -> tuple[list[Incoming], list[DeadLetter], list[Record], int]:
    """Validate each record against the contract; bad ones are set aside, never raised.
    Returns the readings, the records to dead-letter, the records skipped because
    they carry another event type, and how many were `own_producer`'s own readings
    (its outbox's `producer` header; not decoded: stored before they were published).
    Every other producer's readings (a gateway's id, CONTRACT section 1) are decoded
    and deduplicated by reading_id as before, whatever their headers say otherwise.

    The event ids are turned into their canonical text for the whole batch at the end,
    in one msgspec round trip (`str(UUID)` is Python code, ~10x dearer a record), and
    `recorded_at` into the rules' microseconds inline (the decoders only ever return
    aware datetimes)."""
    items: list[Incoming] = []
    event_ids: list[uuid.UUID] = []
    dead: list[DeadLetter] = []
    skipped: list[Record] = []
    echoes = 0
    own = own_producer.encode() if own_producer else None
    validate = vitals_codec.decode
    epoch, one_us = EPOCH, ONE_MICROSECOND
    for index, record in enumerate(records):
        value = record.value
        if value is None:
            dead.append(DeadLetter(record, EMPTY_MESSAGE))
            continue
        traceparent = None
        event_type = EVENT_TYPE
        producer = None
        for name, header in record.headers:
            if name == "traceparent":
                traceparent = header.decode("ascii", errors="replace")
            elif name == EVENT_TYPE_HEADER:
                event_type = header.decode("utf-8", errors="replace")
            elif name == PRODUCER_HEADER:
                producer = header
        if event_type != EVENT_TYPE:
            skipped.append(record)
            continue
        if own is not None and producer == own:
            echoes += 1
            continue
        try:
            event = validate(value)
        except ValidationError as exc:
            if is_other_event_type(value, EVENT_TYPE):
                skipped.append(record)  # no header, but the envelope names another type
            else:
                dead.append(DeadLetter(record, decode_error(value, exc)))
            continue
        data = event.data
        event_ids.append(event.event_id)
        items.append(
            Incoming(
                Reading(
                    data.reading_id,
                    (data.recorded_at - epoch) // one_us,
                    data.bp_systolic,
                    data.bp_diastolic,
                    data.heart_rate,
                    data.spo2,
                    data.respiratory_rate,
                    data.sedation_moaas,
                    tuple(data.symptoms),
                    data.dissociation.value if data.dissociation is not None else None,
                    data.cadss_total,
                ),
                data.recorded_at,
                data.session_id,
                "device",
                None,  # the event id's text, set below for the whole batch
                event.patient_id,
                event.site_id,
                traceparent,
                index,
            )
        )
    for item, event_id in zip(items, vitals_codec.canonical_uuids(event_ids), strict=True):
        item.event_id = event_id
    return items, dead, skipped, echoes


class VitalsBatchConsumer(BatchConsumer):
    topic = MONITORING_VITALS
    event_type = EVENT_TYPE
    description = (
        "VitalsRecorded from bedside device gateways and monitoring's own HTTP ingest, "
        "consumed in batches (one transaction each, offsets committed behind them)."
    )

    def __init__(
        self, runtime: ServiceRuntime, ingest: VitalsIngest, settings: MonitoringSettings
    ) -> None:
        super().__init__(runtime, settings, group_id=settings.vitals_consumer_group)
        self.ingest = ingest

    async def _process(self, records: Sequence[Record]) -> BatchOutcome:
        started = time.perf_counter()
        items, dead, skipped, echoes = decode(records, PRODUCER)
        decoded = time.perf_counter()
        self.stats.seconds["decode"] += decoded - started
        outcome = BatchOutcome(duplicates=echoes, dead=dead, skipped=len(skipped))
        if skipped:
            log.debug("consumer.skipped", topic=MONITORING_VITALS, count=len(skipped))
        if not items:
            return outcome
        async with UnitOfWork(self.runtime.sessions, self.runtime.relay.notify) as uow:
            result = await self.ingest.apply(uow, items)
            ingested = time.perf_counter()
            self.stats.seconds["ingest"] += ingested - decoded
            if result.stored:  # else only the sessions' lock was written: rolled back
                await uow.commit()
                self.stats.seconds["commit"] += time.perf_counter() - ingested
        outcome.stored = len(result.stored)
        outcome.duplicates += len(result.duplicates)
        outcome.dead.extend(
            DeadLetter(records[r.item.ref], PermanentError(r.message)) for r in result.rejected
        )
        return outcome
