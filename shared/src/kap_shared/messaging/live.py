"""Per-instance live consumers: every replica of a service sees every event.

The service's consumer group splits partitions between its instances, which is
right for work (each event handled once) and wrong for fan-out to the clients
connected to one instance (live streams, the console's pages): a clinician on
instance A would miss what instance B handled. A `LiveConsumer` therefore reads
its topics in a consumer group of its own per instance
(`<service>-live-<instance id>`, CONTRACT 6.1 names the console's the same way),
from the end of the topic (`auto_offset_reset="latest"`), and commits nothing:
it is a notification channel, not a record. What an instance missed while it
was down is read from the database by the client's reconnect (`Last-Event-ID`).

Handlers get decoded events of the types they name (tolerant reader: other types
are skipped before validation) and must be cheap and must not raise; an error
is logged and the event dropped (it is never dead-lettered: the durable copy is
in the database and on the topic).
"""

from __future__ import annotations

import os
import socket
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from faststream import AckPolicy
from faststream.kafka import KafkaBroker

from ..events.catalog import decode_as, event_type_of
from ..events.envelope import Envelope
from ..logging import get_logger
from .consumer import KafkaMessage, TopicSubscriber, no_decode, release_drained_partition

log = get_logger(__name__)

LiveHandler = Callable[[Any], Awaitable[None]]


def instance_id() -> str:
    """`INSTANCE_ID` (e.g. the pod name) or host and process id: unique per replica."""
    return os.environ.get("INSTANCE_ID") or f"{socket.gethostname()}-{os.getpid()}"


class LiveConsumer(TopicSubscriber[LiveHandler]):
    def __init__(
        self,
        service: str,
        handlers: Mapping[type[Envelope], LiveHandler],
        *,
        instance: str | None = None,
    ) -> None:
        super().__init__(f"{service}-live-{instance or instance_id()}", handlers)
        self._title = f"{service}-live-<instance>"  # stable in the AsyncAPI document
        self._topics = sorted({cls.topic for cls in handlers})
        self.received = 0

    @property
    def topics(self) -> list[str]:
        return self._topics

    def _subscribe_topic(self, broker: KafkaBroker, topic: str) -> None:
        @broker.subscriber(
            topic,
            group_id=self.group_id,
            auto_offset_reset="latest",
            # Nothing is committed: a fresh instance starts at the end anyway.
            ack_policy=AckPolicy.MANUAL,
            decoder=no_decode,
            title=f"{self._title}:{topic}",
            description="Per-instance live fan-out (no offsets committed).",
        )
        async def on_message(message: KafkaMessage) -> None:
            release_drained_partition(message)
            await self.dispatch(message.headers, message.body)

    async def dispatch(self, headers: Mapping[str, Any] | None, body: bytes) -> str:
        """Decode and hand over one message: "delivered", "skipped" or "failed"."""
        try:
            event_type = event_type_of(headers, body)
            handler = self._handlers.get(event_type)
            if handler is None:
                return "skipped"
            await handler(decode_as(event_type, body))
        except Exception as exc:
            log.warning("live.dropped", group=self.group_id, error=repr(exc)[:300])
            return "failed"
        self.received += 1
        return "delivered"
