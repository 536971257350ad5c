"""Inbox-guarded event consumption: decode, deduplicate, dispatch.

A service declares which event types it reacts to and a handler for each;
`EventConsumer` subscribes to the topics in the service's consumer group,
decodes each message against the contract, and runs the handler inside a
unit of work that also records the `event_id` in the inbox. A redelivered
event finds its id there and has no second effect.

Tolerant reader: the event type is read from the `event_type` header (or a
cheap parse of the envelope) first; a type without a handler - e.g. one a
producer added and deployed before this consumer - is skipped (counted as
outcome "skipped", logged at debug) without being validated. Only handled types
are validated, and one that fails validation still goes to the dead-letter topic.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Annotated, Any, Generic, TypeVar

import structlog
from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition
from faststream import AckPolicy
from faststream._internal.context import Context as ContextField
from faststream.kafka import KafkaBroker
from faststream.kafka.message import KafkaMessage as KafkaMessageType
from opentelemetry.trace import SpanKind
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel.ext.asyncio.session import AsyncSession

from ..events.catalog import EVENTS_BY_TOPIC, decode_as, event_type_of
from ..events.envelope import Envelope
from ..logging import get_logger
from ..tracing import trace_id_of, traced, traceparent_of
from . import inbox
from .linger import fetch_wait
from .unit_of_work import OnCommit, UnitOfWork, nothing_to_notify

log = get_logger(__name__)

EventHandler = Callable[[Any, UnitOfWork], Awaitable[None]]
Handler = TypeVar("Handler")
# (topic, event_type, outcome: processed | duplicate | skipped | ignored, seconds) -> None
ConsumeObserver = Callable[[str, str, str, float], None]


class _AwaitedContext(ContextField):
    """faststream's `Context`, resolved by awaiting it on the event loop.

    fast_depends runs a custom field's synchronous `use` through `anyio.to_thread` for
    every message: a worker thread's wake-up, and the GIL handed to it and back, to read
    a context variable (7.5 % of notifications' event-loop samples under the alert
    benchmark were the hand-off itself; bench/README.md, round 10). An asynchronous `use`
    is awaited in place (fast_depends supports async custom fields). faststream exports
    only the function that builds a `Context`, hence the class from its `_internal`."""

    async def use(self, /, **kwargs: Any) -> dict[str, Any]:  # type: ignore[override]
        resolved: dict[str, Any] = super().use(**kwargs)
        return resolved


# The message being handled, for a subscriber's handler parameter (faststream's own
# `KafkaMessage` annotation resolves it on a worker thread; see `_AwaitedContext`).
KafkaMessage = Annotated[KafkaMessageType, _AwaitedContext("message")]


async def no_decode(message: Any) -> None:
    """A subscriber's `decoder` when the handler reads the raw body itself and reports a
    body that is not JSON on its own: skips faststream's JSON parse of it. (The event
    consumer keeps faststream's: its failure is what names a poison message's
    `x-dlq-error-type` JSONDecodeError.)"""
    return


def release_drained_partition(message: KafkaMessage) -> None:
    """Let aiokafka fetch again, while `message` is handled, from its partition when
    `message` was the last record the broker had there.

    aiokafka's `getone` keeps a partition's drained fetch in its buffer until the *next*
    `getone`, and its fetcher leaves a buffered partition out of every fetch: after its
    prefetch backoff (100 ms) it fetches the other partitions alone, and that fetch
    waits up to `fetch_max_wait_ms` (500 ms) at the broker while they are quiet. So when
    handling a record and committing its offset took over 100 ms, the next record of the
    same partition waited for that fetch (the alert path's hop 4, 350-530 ms outliers:
    bench/README.md, alert round 7). Seeking to the position the consumer already has
    drops the drained fetch and wakes the fetcher, whose next fetch includes this
    partition. Nothing is read twice or skipped, and what is committed (positions,
    after the handler) does not change. Only for the last record of the fetch's high
    watermark: before it, more records of this partition may wait in the buffer, and a
    seek would throw them away to be fetched again."""
    record, consumer = message.raw_message, message.consumer
    # faststream's in-memory TestKafkaBroker has no fetcher (and a batch is a tuple)
    if not isinstance(consumer, AIOKafkaConsumer) or not isinstance(record, ConsumerRecord):
        return
    partition = TopicPartition(record.topic, record.partition)
    if partition not in consumer.assignment():  # taken away by a rebalance meanwhile
        return
    highwater = consumer.highwater(partition)
    if highwater is not None and record.offset + 1 >= highwater:
        consumer.seek(partition, record.offset + 1)


class TopicSubscriber(Generic[Handler]):
    """What the platform's consumers share (this one and `live.LiveConsumer`): handlers
    keyed by event type, and one faststream subscriber per topic that carries one."""

    def __init__(self, group_id: str, handlers: Mapping[type[Envelope], Handler]) -> None:
        self.group_id = group_id
        self._handlers = {cls.model_fields["event_type"].default: h for cls, h in handlers.items()}

    @property
    def topics(self) -> list[str]:
        """The topics that carry at least one handled event type."""
        return [
            topic
            for topic, classes in EVENTS_BY_TOPIC.items()
            if any(cls.model_fields["event_type"].default in self._handlers for cls in classes)
        ]

    def subscribe(self, broker: KafkaBroker) -> None:
        for topic in self.topics:
            self._subscribe_topic(broker, topic)

    def _subscribe_topic(self, broker: KafkaBroker, topic: str) -> None:
        raise NotImplementedError


class EventConsumer(TopicSubscriber[EventHandler]):
    def __init__(
        self,
        *,
        group_id: str,
        sessions: async_sessionmaker[AsyncSession],
        handlers: Mapping[type[Envelope], EventHandler],
        on_commit: OnCommit = nothing_to_notify,
        observe: ConsumeObserver = lambda topic, event_type, outcome, seconds: None,
        linger_ms: int = 0,
    ) -> None:
        super().__init__(group_id, handlers)
        self._observe = observe
        self._sessions = sessions
        self._on_commit = on_commit
        self._linger_ms = linger_ms

    def _subscribe_topic(self, broker: KafkaBroker, topic: str) -> None:
        fetch = fetch_wait(self._linger_ms)

        @broker.subscriber(
            topic,
            group_id=self.group_id,
            ack_policy=AckPolicy.NACK_ON_ERROR,
            auto_offset_reset="earliest",
            title=f"{self.group_id}:{topic}",
            fetch_max_wait_ms=fetch.max_wait_ms,
            fetch_min_bytes=fetch.min_bytes,
        )
        async def on_message(message: KafkaMessage) -> None:
            release_drained_partition(message)
            started = time.perf_counter()
            incoming = (message.headers or {}).get("traceparent")
            with traced(f"{topic} process", incoming, SpanKind.CONSUMER) as span:
                structlog.contextvars.clear_contextvars()
                structlog.contextvars.bind_contextvars(trace_id=trace_id_of(traceparent_of(span)))
                span.set_attribute("messaging.destination.name", topic)
                span.set_attribute("messaging.consumer.group.name", self.group_id)
                event_type = event_type_of(message.headers, message.body)[:64]
                span.set_attribute("kap.event_type", event_type)
                if event_type in self._handlers:
                    outcome = await self.process(decode_as(event_type, message.body))
                else:
                    # Not ours (maybe newer than this consumer): never validated, never DLQ'd.
                    log.debug("consumer.skipped", topic=topic, event_type=event_type)
                    outcome = "skipped"
                span.set_attribute("kap.outcome", outcome)
            self._observe(topic, event_type, outcome, time.perf_counter() - started)

    async def handle(self, event: Envelope) -> bool:
        """Process one event; False when it was ignored or already processed."""
        return await self.process(event) == "processed"

    async def process(self, event: Envelope) -> str:
        """Process one event: "processed", "duplicate" or "ignored" (no handler)."""
        handler = self._handlers.get(event.event_type)
        if handler is None:
            return "ignored"
        with structlog.contextvars.bound_contextvars(
            event_id=str(event.event_id),
            event_type=event.event_type,
            correlation_id=event.correlation_id,
            patient_id=event.patient_id,
            site_id=event.site_id,
        ):
            async with UnitOfWork(self._sessions, self._on_commit) as uow:
                if not await inbox.claim(
                    uow.session, self.group_id, str(event.event_id), event.event_type
                ):
                    log.info("consumer.duplicate_skipped")
                    return "duplicate"
                await handler(event, uow)
                await uow.commit()
            log.info("consumer.processed")
            return "processed"
