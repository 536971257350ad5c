"""A high-volume topic consumed in batches: one transaction a batch, its offsets committed
behind it.

Bedside gateways publish readings every few seconds per patient, and every service that
keeps them (monitoring evaluates them, records files them) would otherwise pay a
transaction, an inbox claim and an offset commit per reading. A `BatchConsumer`:

1. takes up to `VITALS_BATCH_MAX_RECORDS` records from the partitions it owns (a
   faststream *batch* subscriber, manual ack, without faststream's idle sleep and topped
   up when stale: `kap_shared.messaging.batches`);
2. hands them to the service's `_process`, which validates each record on its own (a
   bad record is set aside for the dead-letter topic and does not poison the others; a
   record of another event type is skipped, never dead-lettered) and writes the valid
   ones in ONE transaction, idempotently (a redelivered batch has no second effect);
3. after the commit, publishes the set-aside records to `<topic>.dlq` (the platform's
   dead-letter headers), and only then hands the batch's offsets to an
   `OffsetCommitter`, which commits them while the next batch is polled and processed
   (`kap_shared.messaging.offsets`; flushed before a rebalance and at shutdown).

A crash anywhere before the offsets are committed redelivers the batch. A database outage
is retried and then the batch is rewound (never dead-lettered); an unexpected error in
the batch falls back to one transaction per record, so only the record that fails is
dead-lettered.
"""

from __future__ import annotations

import gc
import json
import time
from abc import ABC, abstractmethod
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from faststream import AckPolicy
from faststream.kafka import KafkaBroker
from faststream.message import StreamMessage
from opentelemetry.trace import SpanKind
from pydantic import ValidationError
from sqlalchemy import exc as sa_exc

from ..events.catalog import event_type_of
from ..logging import get_logger
from ..retry import bounded
from ..settings import VitalsBatchSettings
from ..tracing import traced
from .batches import poll_without_idle_sleep, top_up
from .broker import publish_dead_letter
from .consumer import KafkaMessage, no_decode
from .errors import PermanentError
from .linger import fetch_wait
from .offsets import CommitBeforeRevoke, OffsetCommitter, Position, flush_before_stop

if TYPE_CHECKING:
    from ..service.runtime import ServiceRuntime

log = get_logger(__name__)


class TransactionAborted(Exception):
    """PostgreSQL aborted the batch's transaction to break a deadlock (40P01) or a
    serialization conflict (40001), e.g. with a timer firing for one of its sessions:
    nothing was stored, and the same batch succeeds when tried again."""


ABORTED_SQLSTATES = frozenset({"40P01", "40001"})

# Errors a retry can fix: the database (or the network to it) is unavailable, a
# concurrent writer stored the same record first, or a deadlock was broken.
TRANSIENT: tuple[type[BaseException], ...] = (
    TransactionAborted,
    sa_exc.OperationalError,
    sa_exc.InterfaceError,
    sa_exc.TimeoutError,
    sa_exc.IntegrityError,
    ConnectionError,
    TimeoutError,
)


class Record(Position, Protocol):
    """The parts of an aiokafka ConsumerRecord a batch consumer reads (where it is, and
    what it holds)."""

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
    """Counters and where the time goes, by stage (for /metrics and the benchmarks)."""

    batches: int = 0
    records: int = 0
    stored: int = 0
    duplicates: int = 0
    dead_lettered: int = 0
    first_batch_at: float | None = None
    last_batch_done_at: float | None = None
    seconds: defaultdict[str, float] = field(default_factory=lambda: defaultdict(float))


EMPTY_MESSAGE = PermanentError("empty message (no value)")


def is_other_event_type(value: bytes, event_type: str) -> bool:
    """For a record that failed validation as `event_type` (the rare path): is it an
    envelope of another event type (skipped, tolerant reader) rather than a bad one
    (dead-lettered)?"""
    try:
        return event_type_of(None, value) != event_type
    except ValidationError:  # not JSON, or no event_type: a bad record, not a foreign one
        return False


def decode_error(value: bytes, error: ValidationError) -> BaseException:
    """The error a bad record is dead-lettered with: 'not JSON at all' as the JSON error
    (as the platform's middleware reports it), else the validation error."""
    try:
        json.loads(value.decode("utf-8", errors="replace"))
    except ValueError as json_error:
        return json_error
    return error


class BatchConsumer(ABC):
    """One topic, consumed in batches by `group_id`; the service writes a batch in
    `_process`."""

    topic: str
    event_type: str  # the event type this consumer stores (metrics' label)
    description: str  # the subscription's, in the service's AsyncAPI document

    def __init__(
        self, runtime: ServiceRuntime, settings: VitalsBatchSettings, *, group_id: str
    ) -> None:
        self.runtime = runtime
        self.settings = settings
        self.group_id = group_id
        self.stats = BatchStats()
        commits = runtime.metrics.offset_commits
        self.offsets = OffsetCommitter(
            f"{group_id}:{self.topic}",
            interval=settings.vitals_batch_commit_interval_ms / 1000,
            observe=lambda outcome: commits.labels(self.topic, outcome).inc(),
        )

    @abstractmethod
    async def _process(self, records: Sequence[Record]) -> BatchOutcome:
        """Validate and store `records` in one transaction; return what is to be
        dead-lettered. Raise only when the transaction failed (nothing was stored)."""

    # -- the testable core ---------------------------------------------------------------

    async def process(self, records: Sequence[Record]) -> BatchOutcome:
        """`_process`, with the cyclic garbage collector paused for the batch: its
        thousands of short-lived, acyclic objects are freed by reference counting, and
        the collector's passes over them cost ~15 % of a batch (measured with
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

    async def process_resilient(self, records: Sequence[Record]) -> BatchOutcome | None:
        """`process` with retries for transient errors and, for any other error, one
        transaction per record so that only the failing record is dead-lettered.
        None: still failing transiently; rewind and let the batch be redelivered."""
        retrying = bounded(
            "batch.retry",
            attempts=self.runtime.settings.consumer_max_attempts,
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
            log.error("batch.failed", topic=self.topic, error=repr(exc)[:300], records=len(records))
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
        """One batch, end to end; never raises (its offsets handed to the committer on
        success, the batch rewound otherwise)."""
        if not records:
            return
        started = time.perf_counter()
        if self.stats.first_batch_at is None:
            self.stats.first_batch_at = started
        with traced(f"{self.topic} process", None, SpanKind.CONSUMER) as span:
            span.set_attribute("messaging.batch.message_count", len(records))
            span.set_attribute("messaging.consumer.group.name", self.group_id)
            outcome = await self.process_resilient(records)
            if outcome is None:
                await message.nack()
                return
            try:
                await self.dead_letter(outcome.dead)
            except Exception as exc:
                log.warning("batch.dead_letter_failed", topic=self.topic, error=repr(exc)[:300])
                await message.nack()
                return
            acked = time.perf_counter()
            self.offsets.advance(message.consumer, records)
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
        for label, count in (
            ("processed", outcome.stored),
            ("duplicate", outcome.duplicates),
            ("dead_lettered", len(outcome.dead)),
        ):
            if count:
                metrics.events_consumed.labels(self.topic, self.event_type, label).inc(count)
        if outcome.skipped:  # other event types, not validated (tolerant reader)
            metrics.events_consumed.labels(self.topic, "other", "skipped").inc(outcome.skipped)
        metrics.handler_latency.labels(self.topic).observe(done - started)

    def subscribe(self, broker: KafkaBroker) -> None:
        settings = self.settings

        async def lean_parse(records: tuple[Any, ...], parse_batch: Any) -> StreamMessage[Any]:
            """faststream's batch parser copies every record's body and decodes its
            headers into a dict (~2 µs a record, measured with the benchmark's
            --profile); `_process` reads the raw records itself, so the message is built
            from the first record only and then carries the whole batch. Nacks rewind
            from `raw_message`, so they see every record."""
            message: StreamMessage[Any] = await parse_batch(records[:1])
            message.raw_message = records
            return message

        linger_ms = self.runtime.settings.consumer_linger_ms
        fetch = fetch_wait(linger_ms)
        # A lingering consumer's next fetch is held at the broker: a top-up would only wait.
        top_up_ms = 0 if linger_ms else settings.vitals_batch_top_up_ms
        subscriber = broker.subscriber(
            self.topic,
            batch=True,
            group_id=self.group_id,
            ack_policy=AckPolicy.MANUAL,
            auto_offset_reset="earliest",
            max_records=settings.vitals_batch_max_records,
            batch_timeout_ms=settings.vitals_batch_timeout_ms,
            max_partition_fetch_bytes=settings.vitals_max_partition_fetch_bytes,
            parser=lean_parse,
            decoder=no_decode,
            title=f"{self.group_id}:{self.topic}",
            description=self.description,
            fetch_max_wait_ms=fetch.max_wait_ms,
            fetch_min_bytes=fetch.min_bytes,
            listener=CommitBeforeRevoke(self.offsets),
        )
        poll_without_idle_sleep(subscriber)
        flush_before_stop(subscriber, self.offsets)

        @subscriber
        async def on_batch(message: KafkaMessage) -> None:
            # When the batch is stale (this consumer is behind), what arrived while it
            # waited in aiokafka's buffer joins it, its offsets and its nack.
            records = await top_up(
                message,
                timeout_ms=top_up_ms,
                max_records=settings.vitals_batch_max_records,
                stale_ms=settings.vitals_batch_top_up_ms,
            )
            await self.handle(records, message)
