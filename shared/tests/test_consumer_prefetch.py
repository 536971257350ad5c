"""An event consumer's partition stays fetchable while its last record is handled
(`consumer.release_drained_partition`), against a real broker.

aiokafka's `getone` keeps a drained fetch buffered until the next `getone`, and the
fetcher leaves a buffered partition out of its fetches: a record produced to that
partition meanwhile waited for a fetch of the other partitions (up to
`fetch_max_wait_ms`), the alert path's hop 4 outliers. Here a handler produces the next
record to its own partition and waits until the consumer has fetched it; without the
release it never is while the handler runs. The release moves no position: every record
is handled once, in order, a failed one is redelivered (nack), and the committed
offsets end past all of them."""

from __future__ import annotations

import asyncio
import uuid

import pytest
from aiokafka import AIOKafkaProducer, TopicPartition

from kap_shared.events import Envelope
from kap_shared.messaging.unit_of_work import UnitOfWork

from .dbsupport import Sessions
from .topicsupport import (
    WAIT_SECONDS,
    alert,
    committed,
    consumer_broker,
    new_topic,
    produce,
    run_until,
)

pytestmark = [
    pytest.mark.kafka,
    pytest.mark.filterwarnings("ignore:(?s).*session.exec:DeprecationWarning"),
]


async def test_a_record_of_the_partition_in_hand_is_fetched_during_the_handler(
    kafka_bootstrap: str, sessions: Sessions
) -> None:
    # Three partitions, as the services' topics: the other two are quiet, so without the
    # release the fetcher's fetch of them alone waits at the broker.
    topic, group = await new_topic(kafka_bootstrap, 3), f"prefetch-{uuid.uuid4().hex[:8]}"
    first, second = alert(), alert()
    producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap)
    await producer.start()
    handled: list[str] = []
    fetched_during_first: list[bool] = []
    done = asyncio.Event()

    async def handle(event: Envelope, _uow: UnitOfWork) -> None:
        handled.append(str(event.event_id))
        if event.event_id == first.event_id:
            offset = await produce(producer, topic, second)
            consumer = broker.subscribers[0].consumer  # type: ignore[attr-defined]
            partition = TopicPartition(topic, 0)
            # fetched = the consumer's high watermark of the partition moved past it
            # (aiokafka announces a fetch response to nothing but its own getone/getmany,
            # which would take the record: polled instead)
            async with asyncio.timeout(WAIT_SECONDS):
                while (consumer.highwater(partition) or 0) <= offset:  # noqa: ASYNC110
                    await asyncio.sleep(0.01)
            fetched_during_first.append(True)
        else:
            done.set()

    try:
        await produce(producer, topic, first)
        broker = consumer_broker(kafka_bootstrap, topic, group, sessions, handle)
        await run_until(broker, done)
    finally:
        await producer.stop()

    assert fetched_during_first == [True]
    assert handled == [str(first.event_id), str(second.event_id)]
    assert await committed(kafka_bootstrap, topic, group) == 2


async def test_buffered_and_failed_records_are_handled_once_in_order(
    kafka_bootstrap: str, sessions: Sessions
) -> None:
    topic, group = await new_topic(kafka_bootstrap, 3), f"prefetch-{uuid.uuid4().hex[:8]}"
    events = [alert() for _ in range(5)]
    failing = events[4]  # the last one: it is released before its handler fails
    attempts: list[str] = []
    handled: list[str] = []
    done = asyncio.Event()

    async def handle(event: Envelope, _uow: UnitOfWork) -> None:
        attempts.append(str(event.event_id))
        if event.event_id == failing.event_id and attempts.count(str(event.event_id)) == 1:
            raise RuntimeError("fails once")  # NACK_ON_ERROR: rewound and redelivered
        handled.append(str(event.event_id))
        if len(handled) == len(events):
            done.set()

    producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap)
    await producer.start()
    try:
        for event in events:  # all in the log before the consumer starts: one fetch
            await produce(producer, topic, event)
    finally:
        await producer.stop()
    await run_until(consumer_broker(kafka_bootstrap, topic, group, sessions, handle), done)

    assert handled == [str(event.event_id) for event in events]
    assert attempts.count(str(failing.event_id)) == 2
    assert await committed(kafka_bootstrap, topic, group) == len(events)
