"""A batch consumer's offsets committed behind its work (`kap_shared.messaging.offsets`):
never past a record not yet stored, one commit in flight, a failed one tried again, and
everything handed in committed before a rebalance takes partitions away and before the
consumer stops. The last two run against a real broker, with the broker's answer to a
commit slowed down so that a commit not awaited would still be on its way."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition
from faststream.kafka import KafkaBroker

from kap_shared.messaging.batch_consumer import BatchConsumer, BatchOutcome, Record
from kap_shared.messaging.offsets import COMMITTED, FAILED, CommitBeforeRevoke, OffsetCommitter
from kap_shared.service.metrics import ServiceMetrics
from kap_shared.settings import VitalsBatchSettings
from kap_shared.testing import FakeBatchMessage, FakeConsumer, until

from .topicsupport import WAIT_SECONDS, committed_by_partition, new_topic, produce_values

P0, P1 = TopicPartition("t", 0), TopicPartition("t", 1)


@dataclass
class At:
    topic: str
    partition: int
    offset: int


@dataclass
class Valued(At):
    """A record with a value, as a batch consumer's `_process` reads it."""

    value: bytes
    key: bytes | None = None
    headers: tuple[tuple[str, bytes], ...] = ()


def batch(partition: int, *offsets: int) -> list[At]:
    return [At("t", partition, offset) for offset in offsets]


class SlowBroker(FakeConsumer):
    """Each commit waits for `answer` (the broker's round trip), or fails while `refuse`."""

    def __init__(self) -> None:
        super().__init__({P0, P1})
        self.answer = asyncio.Event()
        self.sent: list[dict[TopicPartition, int]] = []
        self.refuse = False

    async def commit(self, offsets: Any = None) -> None:
        self.sent.append(dict(offsets))
        await self.answer.wait()
        if self.refuse:
            raise ConnectionError("broker unavailable")
        await super().commit(offsets)


# -- the committer on its own ----------------------------------------------------------------


async def test_the_handler_does_not_wait_and_the_commit_is_past_each_partitions_records() -> None:
    consumer, committer = SlowBroker(), OffsetCommitter("test")
    committer.advance(consumer, [*batch(0, 3, 4, 5), *batch(1, 10, 11)])  # returns at once
    await until(lambda: consumer.sent)
    assert consumer.commits == []  # still on its way
    consumer.answer.set()
    await committer.flush()
    assert consumer.commits == [{P0: 6, P1: 12}]  # the next offset to read, per partition


async def test_batches_stored_while_a_commit_is_on_its_way_go_out_together_in_the_next() -> None:
    consumer, committer = SlowBroker(), OffsetCommitter("test")
    committer.advance(consumer, batch(0, 0, 1))
    await until(lambda: consumer.sent)
    committer.advance(consumer, batch(1, 0))
    committer.advance(consumer, batch(0, 2, 3))
    assert len(consumer.sent) == 1  # one commit in flight at a time
    consumer.answer.set()
    await committer.flush()
    assert consumer.commits == [{P0: 2}, {P0: 4, P1: 1}]
    await committer.flush()
    assert len(consumer.commits) == 2  # nothing new: nothing sent again


async def test_batches_stored_within_the_interval_go_out_together_after_it() -> None:
    consumer, committer = SlowBroker(), OffsetCommitter("test", interval=0.2)
    consumer.answer.set()
    committer.advance(consumer, batch(0, 0))  # the first commit: at once
    await until(lambda: consumer.commits == [{P0: 1}])
    committer.advance(consumer, batch(0, 1))
    committer.advance(consumer, batch(1, 0))
    await until(lambda: len(consumer.commits) == 2)
    assert consumer.commits[1] == {P0: 2, P1: 1}  # one commit for both


async def test_a_flush_commits_at_once_whatever_the_interval() -> None:
    consumer, committer = SlowBroker(), OffsetCommitter("test", interval=60)
    consumer.answer.set()
    committer.advance(consumer, batch(0, 0))
    await until(lambda: consumer.commits == [{P0: 1}])
    committer.advance(consumer, batch(0, 1, 2))  # the next commit is a minute away
    async with asyncio.timeout(WAIT_SECONDS):
        await committer.flush()
    assert consumer.commits == [{P0: 1}, {P0: 3}]


async def test_a_failed_commit_is_sent_again_with_the_next_batch() -> None:
    outcomes: list[str] = []
    consumer, committer = SlowBroker(), OffsetCommitter("test", observe=outcomes.append)
    consumer.refuse = True
    consumer.answer.set()
    committer.advance(consumer, batch(1, 7))
    await until(lambda: outcomes == [FAILED])
    consumer.refuse = False
    committer.advance(consumer, batch(0, 0))  # another partition: partition 1 goes along
    await until(lambda: consumer.commits)  # sent by the batch, no flush
    assert consumer.commits == [{P0: 1, P1: 8}]


async def test_a_failed_commit_is_sent_again_by_the_flush_and_each_outcome_observed() -> None:
    outcomes: list[str] = []
    consumer, committer = SlowBroker(), OffsetCommitter("test", observe=outcomes.append)
    consumer.refuse = True
    consumer.answer.set()
    committer.advance(consumer, batch(0, 4))
    await until(lambda: outcomes == [FAILED])
    consumer.refuse = False
    await committer.flush()
    assert consumer.commits == [{P0: 5}]
    assert outcomes == [FAILED, COMMITTED]


async def test_a_redelivered_batch_never_moves_a_partitions_offset_back() -> None:
    consumer, committer = SlowBroker(), OffsetCommitter("test")
    consumer.answer.set()
    committer.advance(consumer, batch(0, 5, 6))
    await committer.flush()
    committer.advance(consumer, batch(0, 3, 4))  # rewound and stored again (deduplicated)
    await committer.flush()
    assert consumer.commits == [{P0: 7}]


async def test_before_a_rebalance_the_commit_on_its_way_and_the_stored_rest_are_committed() -> None:
    consumer, committer = SlowBroker(), OffsetCommitter("test")
    committer.advance(consumer, batch(0, 0))
    await until(lambda: consumer.sent)
    committer.advance(consumer, batch(1, 0, 1))
    revoking = asyncio.create_task(CommitBeforeRevoke(committer).on_partitions_revoked({P1}))
    await asyncio.sleep(0.01)
    assert not revoking.done()  # the revocation waits for the commits
    consumer.answer.set()
    await revoking
    assert consumer.commits == [{P0: 1}, {P1: 2}]

    consumer.assigned = {P0}  # the new assignment
    committer.advance(consumer, [*batch(0, 1), *batch(1, 2)])  # P1: the batch in hand
    await committer.flush()
    assert consumer.commits[-1] == {P0: 2}  # P1 is its new owner's to commit


async def test_a_batch_consumers_commits_are_counted_by_outcome_on_its_metrics() -> None:
    stored = Stored("t", "g", broker=None)
    message = FakeBatchMessage()
    message.consumer = consumer = SlowBroker()
    consumer.refuse = True
    consumer.answer.set()
    registry = stored.runtime.metrics.registry

    def counted(outcome: str) -> float | None:
        labels = {"topic": "t", "outcome": outcome}
        return registry.get_sample_value("kap_consumer_offset_commits_total", labels)

    await stored.handle([Valued("t", 0, 0, b"r-0")], message)
    await until(lambda: counted(FAILED) == 1)
    consumer.refuse = False
    await stored.offsets.flush()
    assert (counted(FAILED), counted(COMMITTED)) == (1, 1)
    assert consumer.commits == [{P0: 1}]


# -- against the broker ------------------------------------------------------------------------

COMMIT_DELAY_SECONDS = 5.0  # longer than a rebalance takes to reach the consumer


@pytest.fixture
def slow_commits(monkeypatch: pytest.MonkeyPatch) -> None:
    """The broker's answer to every offset commit arrives `COMMIT_DELAY_SECONDS` late."""
    commit = AIOKafkaConsumer.commit

    async def late(self: AIOKafkaConsumer, offsets: Any = None) -> None:
        await asyncio.sleep(COMMIT_DELAY_SECONDS)
        await commit(self, offsets)

    monkeypatch.setattr(AIOKafkaConsumer, "commit", late)


class Stored(BatchConsumer):
    """A batch consumer that "stores" each record's value in a list."""

    event_type = "Test"
    description = "test"

    def __init__(self, topic: str, group_id: str, broker: KafkaBroker | None) -> None:
        self.topic = topic
        runtime: Any = SimpleNamespace(
            settings=SimpleNamespace(consumer_max_attempts=1, consumer_linger_ms=0),
            broker=broker,
            metrics=ServiceMetrics(),
        )
        super().__init__(runtime, VitalsBatchSettings(), group_id=group_id)
        self.values: list[bytes] = []

    async def _process(self, records: Sequence[Record]) -> BatchOutcome:
        self.values.extend(record.value or b"" for record in records)
        return BatchOutcome(stored=len(records))


@asynccontextmanager
async def consuming(bootstrap: str, topic: str, group: str) -> AsyncIterator[Stored]:
    """A `Stored` consumer on its own broker connection, stopped as a service stops it."""
    broker = KafkaBroker(bootstrap, logger=None, graceful_timeout=15)
    stored = Stored(topic, group, broker)
    stored.subscribe(broker)
    await broker.start()
    try:
        yield stored
    finally:
        for subscriber in broker.subscribers:  # as ServiceRuntime.stop does
            await subscriber.stop()
        await broker.stop()


async def produce(bootstrap: str, topic: str, values: list[bytes]) -> None:
    """`values` spread over partitions 0 and 1, alternately."""
    for partition in (0, 1):
        await produce_values(bootstrap, topic, partition, values[partition::2])


async def stored_all(consumer: Stored, count: int) -> None:
    await until(lambda: len(consumer.values) >= count, timeout=WAIT_SECONDS)


def values(prefix: str, count: int) -> list[bytes]:
    return [f"{prefix}-{n}".encode() for n in range(count)]


@pytest.mark.kafka
@pytest.mark.usefixtures("slow_commits")
async def test_a_stopping_consumer_commits_every_batch_it_stored(kafka_bootstrap: str) -> None:
    topic, group = await new_topic(kafka_bootstrap, 2), f"offsets-{uuid.uuid4().hex[:8]}"
    await produce(kafka_bootstrap, topic, values("r", 20))
    async with consuming(kafka_bootstrap, topic, group) as consumer:
        await stored_all(consumer, 20)
        assert consumer.offsets.uncommitted()  # the last commit is still on its way
    assert await committed_by_partition(kafka_bootstrap, topic, group) == {0: 10, 1: 10}

    await produce(kafka_bootstrap, topic, values("s", 4))
    async with consuming(kafka_bootstrap, topic, group) as restarted:
        await stored_all(restarted, 4)
    assert sorted(restarted.values) == sorted(values("s", 4))  # nothing twice


@pytest.mark.kafka
@pytest.mark.usefixtures("slow_commits")
async def test_a_rebalance_hands_partitions_over_past_every_record_stored(
    kafka_bootstrap: str,
) -> None:
    topic, group = await new_topic(kafka_bootstrap, 2), f"offsets-{uuid.uuid4().hex[:8]}"
    await produce(kafka_bootstrap, topic, values("r", 20))
    async with consuming(kafka_bootstrap, topic, group) as first:
        await stored_all(first, 20)
        async with consuming(kafka_bootstrap, topic, group) as second:
            await until(lambda: assigned(first) and assigned(second), timeout=WAIT_SECONDS * 2)
            await produce(kafka_bootstrap, topic, values("s", 6))
            await until(lambda: len(first.values) + len(second.values) >= 26, timeout=WAIT_SECONDS)
    # A partition handed over from an older commit would have been read again from it
    # the moment it was assigned, before the second round was produced.
    every = first.values + second.values
    assert sorted(every) == sorted(values("r", 20) + values("s", 6))  # each once


def assigned(consumer: Stored) -> set[TopicPartition]:
    subscriber: Any = consumer.runtime.broker.subscribers[0]
    return set(subscriber.consumer.assignment()) if subscriber.consumer else set()
