"""A topic of a test's own on the real broker, and the platform's event consumer on it
(the messaging tests that need Kafka's own fetch behaviour)."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from faststream.kafka import KafkaBroker

from kap_shared.events import EVENT_TYPES, Envelope, VitalsAlert
from kap_shared.messaging.consumer import EventConsumer

from .dbsupport import Sessions
from .examples import example

# A bound for a loaded machine, not a measure: the fetch returns as soon as data arrives.
WAIT_SECONDS = 20


def alert() -> Envelope:
    return EVENT_TYPES["VitalsAlert"].model_validate(
        example("VitalsAlert", event_id=str(uuid.uuid4()))
    )


class OnTopic(EventConsumer):
    """The platform's event consumer on a topic of the test's own."""

    def __init__(self, topic: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._topic = topic

    @property
    def topics(self) -> list[str]:
        return [self._topic]


async def new_topic(bootstrap: str, partitions: int) -> str:
    topic = f"kap.test-topic-{uuid.uuid4().hex[:10]}"
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(topic, partitions, 1)])
    finally:
        await admin.close()
    return topic


async def produce(producer: AIOKafkaProducer, topic: str, event: Envelope) -> int:
    """Send `event` to partition 0; its offset."""
    sent = await producer.send_and_wait(
        topic,
        event.to_json(),
        key=event.key,
        partition=0,
        headers=[("event_type", event.event_type.encode())],
    )
    return int(sent.offset)


async def committed(bootstrap: str, topic: str, group: str) -> int | None:
    """`group`'s committed offset of partition 0."""
    return (await committed_by_partition(bootstrap, topic, group, (0,)))[0]


async def committed_by_partition(
    bootstrap: str, topic: str, group: str, partitions: tuple[int, ...] = (0, 1)
) -> dict[int, int | None]:
    """`group`'s committed offset of each of `partitions` (None: nothing committed)."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=group)
    await consumer.start()
    try:
        offsets = {p: await consumer.committed(TopicPartition(topic, p)) for p in partitions}
        return {p: None if offset is None else int(offset) for p, offset in offsets.items()}
    finally:
        await consumer.stop()


async def produce_values(bootstrap: str, topic: str, partition: int, values: list[bytes]) -> None:
    """Send raw `values` to one partition, in order, each acknowledged."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap)
    await producer.start()
    try:
        for value in values:
            await producer.send_and_wait(topic, value, partition=partition)
    finally:
        await producer.stop()


def consumer_broker(
    bootstrap: str,
    topic: str,
    group: str,
    sessions: Sessions,
    handle: Any,
    *,
    linger_ms: int = 0,
) -> KafkaBroker:
    broker = KafkaBroker(bootstrap, logger=None, graceful_timeout=1)
    handlers = {VitalsAlert: handle}
    OnTopic(
        topic, group_id=group, sessions=sessions, handlers=handlers, linger_ms=linger_ms
    ).subscribe(broker)
    return broker


async def run_until(broker: KafkaBroker, done: asyncio.Event) -> None:
    await broker.start()
    try:
        async with asyncio.timeout(60):
            await done.wait()
    finally:
        await broker.stop()
