"""The `kap.monitoring.vitals.v1` consumer: readings in batches.

Bedside gateways publish readings every few seconds per patient, so this topic is
consumed in batches, not one message at a time:

1. a faststream *batch* subscriber (its own consumer group, `monitoring-vitals`, so
   that the low-volume event subscribers joining or leaving never rebalance the
   vitals stream; manual ack) hands over up to `VITALS_BATCH_MAX_RECORDS` records
   from the partitions it owns;
2. each record is validated on its own against the contract (`vitals_codec`: a
   strict msgspec decoder generated from the VitalsRecorded model, the model itself
   deciding whatever the fast path does not accept): a bad record is set aside for the dead-letter
   topic and does not poison the others; a record of another event type (one a
   producer added after this consumer was built) is skipped, never dead-lettered
   (tolerant reader: `event_type` header first, the envelope's field otherwise);
   a reading this service published itself (its `producer` header: the echo of
   `POST .../vitals`, stored with its rules applied in the transaction that wrote
   its outbox row) is a repeat, settled without decoding or reading the database;
3. the valid ones go through `VitalsIngest` in ONE database transaction: repeats
   dropped by reading_id, sessions locked and loaded once, rules evaluated in
   memory, readings/alerts/outbox/rule state written in bulk;
4. after the commit, the set-aside records are published to
   `kap.monitoring.vitals.v1.dlq` (same headers as the platform's dead-letter
   middleware), and only then are the offsets committed.

A crash anywhere before step 4's offset commit redelivers the batch; the readings
already stored are then repeats and have no second effect. A database outage is
retried and then the batch is rewound (never dead-lettered); an unexpected error
in the batch falls back to one transaction per record, so only the record that
fails is dead-lettered.
"""

from __future__ import annotations

import gc
import json
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from faststream import AckPolicy
from faststream.kafka import KafkaBroker
from faststream.message import StreamMessage
from opentelemetry.trace import SpanKind
from pydantic import ValidationError
from sqlalchemy import exc as sa_exc

from kap_shared.events.catalog import EVENT_TYPE_HEADER, event_type_of
from kap_shared.events.topics import MONITORING_VITALS
from kap_shared.logging import get_logger
from kap_shared.messaging.batches import poll_without_idle_sleep, top_up
from kap_shared.messaging.broker import publish_dead_letter
from kap_shared.messaging.consumer import KafkaMessage, no_decode
from kap_shared.messaging.errors import PermanentError
from kap_shared.messaging.outbox import PRODUCER_HEADER
from kap_shared.messaging.unit_of_work import UnitOfWork
from kap_shared.retry import bounded
from kap_shared.service.runtime import ServiceRuntime
from kap_shared.tracing import traced

from ..config import MonitoringSettings
from ..domain.vitals import EPOCH, ONE_MICROSECOND, Reading
from ..handlers.alerts import PRODUCER
from ..handlers.vitals import Incoming, VitalsIngest
from . import vitals_codec

log = get_logger(__name__)

EVENT_TYPE = "VitalsRecorded"


class TransactionAborted(Exception):
    """PostgreSQL aborted the batch's transaction to break a deadlock (40P01) or a
    serialization conflict (40001), e.g. with a timer firing for one of its sessions:
    nothing was stored, and the same batch succeeds when tried again."""


ABORTED_SQLSTATES = frozenset({"40P01", "40001"})

# Errors a retry can fix: the database (or the network to it) is unavailable, a
# concurrent writer stored the same reading first, or a deadlock was broken.
TRANSIENT: tuple[type[BaseException], ...] = (
    TransactionAborted,
    sa_exc.OperationalError,
    sa_exc.InterfaceError,
    sa_exc.TimeoutError,
    sa_exc.IntegrityError,
    ConnectionError,
    TimeoutError,
)


class Record(Protocol):
    """The parts of an aiokafka ConsumerRecord this consumer reads."""

    @property
    def topic(self) -> str: ...
    @property
    def partition(self) -> int: ...
    @property
    def offset(self) -> int: ...
    @property
    def key(self) -> bytes | None: ...
    @property
    def value(self) -> bytes | None: ...
    @property
    def headers(self) -> Sequence[tuple[str, bytes]]: ...


@dataclass(frozen=True)
class DeadLetter:
    record: Record
    error: BaseException


@dataclass
class BatchOutcome:
    stored: int = 0
    duplicates: int = 0
    skipped: int = 0
    dead: list[DeadLetter] = field(default_factory=list)


@dataclass
class BatchStats:
    """Counters and where the time goes (for /metrics and the benchmark)."""

    batches: int = 0
    records: int = 0
    stored: int = 0
    duplicates: int = 0
    dead_lettered: int = 0
    first_batch_at: float | None = None
    last_batch_done_at: float | None = None
    seconds: dict[str, float] = field(
        default_factory=lambda: dict.fromkeys(("decode", "ingest", "commit", "ack"), 0.0)
    )


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
            dead.append(DeadLetter(record, PermanentError("empty message (no value)")))
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
            if _other_event_type(value):
                skipped.append(record)  # no header, but the envelope names another type
            else:
                dead.append(DeadLetter(record, _precise(value, exc)))
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


def _other_event_type(value: bytes) -> bool:
    """Only on the (rare) failure path: is this an envelope of another event type?"""
    try:
        return event_type_of(None, value) != EVENT_TYPE
    except ValidationError:  # not JSON, or no event_type: a bad record, not a foreign one
        return False


def _precise(value: bytes, error: ValidationError) -> BaseException:
    """Report 'not JSON at all' as the JSON error (as the platform's middleware does)."""
    try:
        json.loads(value.decode("utf-8", errors="replace"))
    except ValueError as json_error:
        return json_error
    return error


class VitalsBatchConsumer:
    def __init__(
        self, runtime: ServiceRuntime, ingest: VitalsIngest, settings: MonitoringSettings
    ) -> None:
        self.runtime = runtime
        self.ingest = ingest
        self.settings = settings
        self.group_id = settings.vitals_consumer_group
        self.stats = BatchStats()

    # -- the testable core ---------------------------------------------------------------

    async def process(self, records: Sequence[Record]) -> BatchOutcome:
        """Decode, then ingest in one transaction. Returns what is to be dead-lettered;
        raises only when the transaction failed (nothing was stored).

        The cyclic garbage collector is paused for the batch: its thousands of
        short-lived, acyclic objects are freed by reference counting, and the
        collector's passes over them cost ~15 % of the batch (measured with
        bench/vitals_throughput.py). Anything cyclic is collected once it resumes."""
        collecting = gc.isenabled()
        gc.disable()
        try:
            return await self._process(records)
        except sa_exc.DBAPIError as exc:
            if getattr(exc.orig, "sqlstate", None) in ABORTED_SQLSTATES:
                raise TransactionAborted(str(exc.orig)[:200]) from exc
            raise
        finally:
            if collecting:
                gc.enable()

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
            await uow.commit()
            self.stats.seconds["commit"] += time.perf_counter() - ingested
        outcome.stored = len(result.stored)
        outcome.duplicates += len(result.duplicates)
        outcome.dead.extend(
            DeadLetter(records[r.item.ref], PermanentError(r.message)) for r in result.rejected
        )
        return outcome

    async def process_resilient(self, records: Sequence[Record]) -> BatchOutcome | None:
        """`process` with retries for transient errors and, for any other error, one
        transaction per record so that only the failing record is dead-lettered.
        None: still failing transiently; rewind and let the batch be redelivered."""
        retrying = bounded(
            "vitals.batch_retry",
            attempts=self.settings.consumer_max_attempts,
            first=self.settings.vitals_batch_retry_backoff_seconds,
            retry_on=TRANSIENT,
        )
        try:
            async for attempt in retrying:
                with attempt:
                    return await self.process(records)
        except TRANSIENT as exc:
            # Still failing: a conflict is some record's fault, anything else the
            # database's (rewind and let the batch be redelivered).
            if isinstance(exc, sa_exc.IntegrityError):
                return await self._one_by_one(records)
        except Exception as exc:
            log.error("vitals.batch_failed", error=repr(exc)[:300], records=len(records))
            return await self._one_by_one(records)
        return None

    async def _one_by_one(self, records: Sequence[Record]) -> BatchOutcome | None:
        total = BatchOutcome()
        for record in records:
            try:
                outcome = await self.process([record])
            except TRANSIENT as exc:
                if not isinstance(exc, sa_exc.IntegrityError):
                    return None
                total.dead.append(DeadLetter(record, exc))
                continue
            except Exception as exc:
                total.dead.append(DeadLetter(record, exc))
                continue
            total.stored += outcome.stored
            total.duplicates += outcome.duplicates
            total.skipped += outcome.skipped
            total.dead.extend(outcome.dead)
        return total

    async def dead_letter(self, letters: Sequence[DeadLetter]) -> None:
        """Publish to `<topic>.dlq` with the platform's provenance headers (awaiting
        each acknowledgement); raises if the broker refuses, so nothing is committed."""
        for letter in letters:
            record, error = letter.record, letter.error
            await publish_dead_letter(
                self.runtime.broker,
                record,
                record.value or b"",
                {name: value.decode(errors="replace") for name, value in record.headers},
                error=error,
                consumer_group=self.group_id,
                attempts=1,
            )
            self.runtime.metrics.dead_letters.labels(record.topic, type(error).__name__).inc()

    # -- the subscription ------------------------------------------------------------------

    async def handle(self, records: Sequence[Record], message: Any) -> None:
        """One batch, end to end; never raises (ack on success, rewind otherwise)."""
        if not records:
            return
        started = time.perf_counter()
        if self.stats.first_batch_at is None:
            self.stats.first_batch_at = started
        with traced(f"{MONITORING_VITALS} process", None, SpanKind.CONSUMER) as span:
            span.set_attribute("messaging.batch.message_count", len(records))
            outcome = await self.process_resilient(records)
            if outcome is None:
                await message.nack()
                return
            try:
                await self.dead_letter(outcome.dead)
            except Exception as exc:
                log.warning("vitals.dead_letter_failed", error=repr(exc)[:300])
                await message.nack()
                return
            acked = time.perf_counter()
            await message.ack()
            done = time.perf_counter()
        self._observe(records, outcome, started, acked, done)

    def _observe(
        self,
        records: Sequence[Record],
        outcome: BatchOutcome,
        started: float,
        acked: float,
        done: float,
    ) -> None:
        stats = self.stats
        stats.seconds["ack"] += done - acked
        stats.batches += 1
        stats.records += len(records)
        stats.stored += outcome.stored
        stats.duplicates += outcome.duplicates
        stats.dead_lettered += len(outcome.dead)
        stats.last_batch_done_at = done
        metrics = self.runtime.metrics
        topic = MONITORING_VITALS
        for label, count in (
            ("processed", outcome.stored),
            ("duplicate", outcome.duplicates),
            ("dead_lettered", len(outcome.dead)),
        ):
            if count:
                metrics.events_consumed.labels(topic, EVENT_TYPE, label).inc(count)
        if outcome.skipped:  # other event types, not validated (tolerant reader)
            metrics.events_consumed.labels(topic, "other", "skipped").inc(outcome.skipped)
        metrics.handler_latency.labels(topic).observe(done - started)

    def subscribe(self, broker: KafkaBroker) -> None:
        settings = self.settings

        async def lean_parse(records: tuple[Any, ...], parse_batch: Any) -> StreamMessage[Any]:
            """faststream's batch parser copies every record's body and decodes its
            headers into a dict (~2 µs a record, measured with the benchmark's
            --profile); `decode` reads the raw records itself, so the message is built
            from the first record only and then carries the whole batch. Acks commit
            the consumer's position and nacks rewind from `raw_message`: both see
            every record."""
            message: StreamMessage[Any] = await parse_batch(records[:1])
            message.raw_message = records
            return message

        subscriber = broker.subscriber(
            MONITORING_VITALS,
            batch=True,
            group_id=self.group_id,
            ack_policy=AckPolicy.MANUAL,
            auto_offset_reset="earliest",
            max_records=settings.vitals_batch_max_records,
            batch_timeout_ms=settings.vitals_batch_timeout_ms,
            max_partition_fetch_bytes=settings.vitals_max_partition_fetch_bytes,
            parser=lean_parse,
            decoder=no_decode,
            title=f"{self.group_id}:{MONITORING_VITALS}",
            description="VitalsRecorded from bedside device gateways and monitoring's own "
            "HTTP ingest, consumed in batches (one transaction and one offset commit each).",
        )
        poll_without_idle_sleep(subscriber)

        @subscriber
        async def on_batch(message: KafkaMessage) -> None:
            # When the batch is stale (monitoring is behind), what arrived while it waited
            # in aiokafka's buffer joins it, and its ack and nack.
            records = await top_up(
                message,
                timeout_ms=settings.vitals_batch_top_up_ms,
                max_records=settings.vitals_batch_max_records,
                stale_ms=settings.vitals_batch_top_up_ms,
            )
            await self.handle(records, message)
