"""A lingering event consumer (CONSUMER_LINGER_MS, `kap_shared.messaging.linger`) against
a real broker: the broker holds its fetch for the linger, so what arrives meanwhile is
fetched as one batch, and every event is still handled once and committed.

The one time in here is a lower bound that a slow machine can only exceed: a held fetch
cannot be answered before the linger has passed (nothing near the megabyte that would
answer it early is produced)."""

from __future__ import annotations

import asyncio
import time
import uuid

import pytest
from aiokafka import AIOKafkaProducer, TopicPartition

from kap_shared.events import Envelope
from kap_shared.messaging.unit_of_work import UnitOfWork

from .dbsupport import Sessions
from .topicsupport import WAIT_SECONDS, alert, committed, consumer_broker, new_topic, produce

pytestmark = [
    pytest.mark.kafka,
    pytest.mark.filterwarnings("ignore:(?s).*session.exec:DeprecationWarning"),
]

LINGER_MS = 2000


async def test_events_arriving_while_the_fetch_is_held_are_fetched_together(
    kafka_bootstrap: str, sessions: Sessions
) -> None:
    topic, group = await new_topic(kafka_bootstrap, 1), f"linger-{uuid.uuid4().hex[:8]}"
    first, second = alert(), alert()
    partition = TopicPartition(topic, 0)
    handled: list[str] = []
    fetched_with_first: list[bool] = []
    first_handled_after: list[float] = []
    done = asyncio.Event()

    async def handle(event: Envelope, _uow: UnitOfWork) -> None:
        handled.append(str(event.event_id))
        if event.event_id == first.event_id:
            first_handled_after.append(time.monotonic() - started)
            consumer = broker.subscribers[0].consumer  # type: ignore[attr-defined]
            fetched_with_first.append((consumer.highwater(partition) or 0) > second_offset)
        else:
            done.set()

    producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap)
    await producer.start()
    try:
        await produce(producer, topic, first)  # in the log before the consumer asks
        broker = consumer_broker(
            kafka_bootstrap, topic, group, sessions, handle, linger_ms=LINGER_MS
        )
        started = time.monotonic()
        await broker.start()
        try:
            consumer = broker.subscribers[0].consumer  # type: ignore[attr-defined]
            async with asyncio.timeout(WAIT_SECONDS):
                while not consumer.assignment():  # noqa: ASYNC110
                    await asyncio.sleep(0.01)
            # The first fetch is held (one event is far from the linger's minimum), so
            # the second joins it: both come back together when the linger is over.
            second_offset = await produce(producer, topic, second)
            async with asyncio.timeout(WAIT_SECONDS + LINGER_MS / 1000):
                await done.wait()
        finally:
            await broker.stop()
    finally:
        await producer.stop()

    assert first_handled_after[0] >= LINGER_MS / 1000  # the broker held the fetch
    assert fetched_with_first == [True]
    assert handled == [str(first.event_id), str(second.event_id)]
    assert await committed(kafka_bootstrap, topic, group) == 2
