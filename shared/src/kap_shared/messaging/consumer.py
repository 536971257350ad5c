"""Inbox-guarded event consumption: decode, deduplicate, dispatch.

A service declares which event types it reacts to and a handler for each;
`EventConsumer` subscribes to the topics in the service's consumer group,
decodes each message against the contract, and runs the handler inside a
unit of work that also records the `event_id` in the inbox. A redelivered
event finds its id there and has no second effect.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import structlog
from faststream import AckPolicy
from faststream.kafka import KafkaBroker
from faststream.kafka.annotations import KafkaMessage
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel.ext.asyncio.session import AsyncSession

from ..events.catalog import EVENTS_BY_TOPIC, decode
from ..events.envelope import Envelope
from ..logging import get_logger
from ..tracing import continue_trace
from . import inbox
from .unit_of_work import UnitOfWork

log = get_logger(__name__)

EventHandler = Callable[[Any, UnitOfWork], Awaitable[None]]


class EventConsumer:
    def __init__(
        self,
        *,
        group_id: str,
        sessions: async_sessionmaker[AsyncSession],
        handlers: Mapping[type[Envelope], EventHandler],
        on_commit: Callable[[], None] = lambda: None,
    ) -> None:
        self.group_id = group_id
        self._sessions = sessions
        self._handlers = {cls.model_fields["event_type"].default: h for cls, h in handlers.items()}
        self._on_commit = on_commit

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
        @broker.subscriber(
            topic,
            group_id=self.group_id,
            ack_policy=AckPolicy.NACK_ON_ERROR,
            auto_offset_reset="earliest",
            title=f"{self.group_id}:{topic}",
        )
        async def on_message(message: KafkaMessage) -> None:
            continue_trace((message.headers or {}).get("traceparent"))
            event = decode(topic, message.body)
            await self.handle(event)

    async def handle(self, event: Envelope) -> bool:
        """Process one event; False when it was ignored or already processed."""
        handler = self._handlers.get(event.event_type)
        if handler is None:
            return False
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
                    return False
                await handler(event, uow)
                await uow.commit()
            log.info("consumer.processed")
            return True
