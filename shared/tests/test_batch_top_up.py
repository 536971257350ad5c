"""The top-up read of a batch subscriber against a real broker: records read by the
top-up share the batch's fate. A batch that fails (nack) or whose consumer dies before
its ack is redelivered with its topped-up records, and once acknowledged nothing is
delivered again: nothing lost, nothing twice.

The batch is built so that the top-up is the only way a partition gets into it: the
first poll finds records on partition 0 only, and the handler writes to partition 1
before topping up. Were the topped-up records not part of the message, the nack would
not rewind partition 1 and they would never be seen again."""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass
from typing import Any

import pytest
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from faststream import AckPolicy
from faststream.kafka import KafkaBroker
from faststream.kafka.annotations import KafkaMessage

from kap_shared.messaging.batches import top_up

from .topicsupport import committed_by_partition, produce_values

pytestmark = pytest.mark.kafka

MAX_RECORDS = 100
# Long enough for the broker's answer on a loaded machine; the read returns on arrival.
WAIT_MS = 10_000


class Subscriber:
    """A batch subscriber as monitoring's vitals consumer wires it (manual ack, top-up
    before the work); its first batch fails after the top-up, every later one is
    "stored" and acknowledged."""

    def __init__(
        self, bootstrap: str, topic: str, group: str, failure: str, expected: set[bytes]
    ) -> None:
        self.bootstrap, self.topic, self.failure = bootstrap, topic, failure
        self.expected = expected
        self.all_stored = asyncio.Event()
        self.first_poll: list[tuple[int, bytes]] = []
        self.topped_up: list[tuple[int, bytes]] = []
        self.stored: list[bytes] = []
        self.crashed = asyncio.Event()
        self.broker = KafkaBroker(bootstrap, logger=None, graceful_timeout=1)

        @self.broker.subscriber(
            topic,
            batch=True,
            group_id=group,
            ack_policy=AckPolicy.MANUAL,
            auto_offset_reset="earliest",
            max_records=MAX_RECORDS,
            batch_timeout_ms=20,
        )
        async def on_batch(message: KafkaMessage) -> None:
            if self.first_poll:
                records = await top_up(message, timeout_ms=20, max_records=MAX_RECORDS, stale_ms=0)
                self.stored.extend(record.value for record in records)
                await message.ack()
                if self.expected <= set(self.stored):
                    self.all_stored.set()
                return
            polled = message.raw_message
            assert isinstance(polled, tuple)
            self.first_poll = [(record.partition, record.value) for record in polled]
            await produce_values(bootstrap, topic, 1, [b"late-1", b"late-2", b"late-3"])
            # stale_ms=0: every batch counts as stale here (the age rule has its own test)
            records = await top_up(message, timeout_ms=WAIT_MS, max_records=MAX_RECORDS, stale_ms=0)
            self.topped_up = [(record.partition, record.value) for record in records[len(polled) :]]
            if self.failure == "nack":
                await message.nack()  # what the vitals consumer does when a batch fails
                return
            self.crashed.set()  # the process dies here: no ack, no nack
            await asyncio.Event().wait()

    async def wait_until_all_stored(self) -> None:
        try:
            await asyncio.wait_for(self.all_stored.wait(), timeout=60)
        except TimeoutError:
            pytest.fail(f"never redelivered: {sorted(self.expected - set(self.stored))}")


async def scenario(bootstrap: str, failure: str) -> None:
    topic, group = f"kap.test-top-up-{uuid.uuid4().hex[:10]}", f"top-up-{failure}"
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(topic, 2, 1)])
    finally:
        await admin.close()
    early = [f"early-{n}".encode() for n in range(5)]
    await produce_values(bootstrap, topic, 0, early)
    everything = {*early, b"late-1", b"late-2", b"late-3"}

    subscriber = Subscriber(bootstrap, topic, group, failure, everything)
    await subscriber.broker.start()
    try:
        if failure == "crash":
            async with asyncio.timeout(60):
                await subscriber.crashed.wait()
            await subscriber.broker.stop()
            crashed = subscriber
            subscriber = Subscriber(bootstrap, topic, group, failure, everything)
            subscriber.first_poll = crashed.first_poll  # the restarted one just stores
            subscriber.topped_up = crashed.topped_up
            await subscriber.broker.start()
        await subscriber.wait_until_all_stored()
    finally:
        await subscriber.broker.stop()

    # The batch was built as intended: partition 1 came in by the top-up alone.
    assert {partition for partition, _ in subscriber.first_poll} == {0}
    assert subscriber.topped_up
    assert {partition for partition, _ in subscriber.topped_up} == {1}
    # Nothing lost, nothing twice: every record stored once, and the committed
    # positions are past all of them, so a restart delivers none again.
    assert sorted(subscriber.stored) == sorted(everything)
    assert await committed_by_partition(bootstrap, topic, group) == {0: len(early), 1: 3}


@pytest.mark.parametrize("failure", ["nack", "crash"])
def test_a_failed_batch_redelivers_its_topped_up_records(
    kafka_bootstrap: str, failure: str
) -> None:
    asyncio.run(scenario(kafka_bootstrap, failure))


@dataclass(frozen=True)
class Polled:
    """A record as the poll returned it: its timestamp in ms (Kafka's CreateTime)."""

    name: str
    timestamp: int


NOW = 1_000.0  # the clock of the age rule, in seconds: 1,000,000 ms
A, B = Polled("a", 999_980), Polled("b", 999_985)  # 20 and 15 ms old: stale at 10 ms


class Consumer:
    def __init__(self) -> None:
        self.polls = 0

    async def getmany(self, **_: Any) -> dict[Any, Any]:
        self.polls += 1
        return {"partition": [Polled("fresher", 999_999)]}


class Message:
    def __init__(self, *records: Polled) -> None:
        self.consumer = Consumer()
        self.raw_message: Any = records


def topped_up(message: Any, *, timeout_ms: int = 10, max_records: int = 5) -> tuple[Any, ...]:
    return asyncio.run(
        top_up(
            message, timeout_ms=timeout_ms, max_records=max_records, stale_ms=10, now=lambda: NOW
        )
    )


def test_a_stale_batch_is_topped_up_and_a_fresh_one_is_not() -> None:
    """The age rule: only a batch whose newest record is at least `stale_ms` old (the
    consumer is behind) waits for a top-up; a fresher one would mostly wait for records
    not produced yet."""
    stale = Message(A, B)  # newest 15 ms old
    assert [r.name for r in topped_up(stale)] == ["a", "b", "fresher"]
    assert [r.name for r in stale.raw_message] == ["a", "b", "fresher"]  # the ack covers it

    on_the_boundary = Message(A, Polled("b", 999_990))  # exactly 10 ms old
    assert len(topped_up(on_the_boundary)) == 3

    fresh = Message(A, Polled("b", 999_991))  # 9 ms old: the consumer keeps up
    assert [r.name for r in topped_up(fresh)] == ["a", "b"]
    assert fresh.consumer.polls == 0


def test_no_top_up_for_a_single_record_a_full_batch_or_an_in_memory_broker() -> None:
    single = Message(A)
    assert topped_up(single) == (A,)
    full = Message(A, B)
    assert topped_up(full, max_records=2) == (A, B)
    off = Message(A, B)
    assert topped_up(off, timeout_ms=0) == (A, B)
    assert single.consumer.polls == full.consumer.polls == off.consumer.polls == 0

    class InMemory:  # faststream's TestKafkaBroker: a consumer that cannot fetch
        consumer = object()
        raw_message = (A, B)

    assert topped_up(InMemory()) == (A, B)
