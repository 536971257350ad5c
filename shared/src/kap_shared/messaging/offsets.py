"""A batch consumer's offsets committed behind its work (Kafka's usual `commitAsync` in the
loop, `commitSync` before a rebalance and at shutdown).

Awaiting each batch's offset commit put a broker round trip between one batch and the
poll of the next: up to a sixth of a batch consumer's wall time when it catches up
(bench/vitals_throughput.py, `stage_seconds.ack`), and the same wait in front of every
critical reading's batch on the alert path (hop 1, bench/README.md). An
`OffsetCommitter` takes a batch's offsets once its work is durable and commits them
while the consumer polls and processes the next batch:

* **Nothing lost.** What is committed is the end of records *already stored*, per
  partition, never the consumer's position (which includes whatever it polled since).
* **Nothing twice in effect.** A crash before a commit lands redelivers the batches
  since the last one, which the batch consumers' writes deduplicate (monitoring by
  reading id, records by event id), as they do any redelivery.
* **One commit in flight, and at most one an `interval`.** Offsets handed in meanwhile
  go out together with the next commit. At a clinic's rate every reading is a batch of
  its own, and a commit each would be a broker request (and a write to its offsets log)
  per reading: the interval (`VITALS_BATCH_COMMIT_INTERVAL_MS`) bounds them, at the price
  of redelivering up to that much more after a crash (deduplicated, as above).
* **Before partitions are revoked** (`CommitBeforeRevoke`) **and before the consumer
  stops** (`flush`), everything handed in is committed and awaited. A commit that fails
  (the broker away, a rebalance under way) is logged and tried again with the next batch
  or the flush; offsets of partitions no longer assigned are dropped: their records are
  redelivered to the new owner.
* **Counted.** Each commit's outcome goes to `observe` (the service's
  `kap_consumer_offset_commits_total{topic,outcome}`): failures and no successes for
  minutes mean a restart or rebalance would redeliver everything since the last one.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Callable, Iterable
from contextlib import suppress
from typing import Any, Protocol

from aiokafka import ConsumerRebalanceListener, TopicPartition
from faststream._internal.endpoint.subscriber.usecase import SubscriberUsecase
from faststream.kafka.subscriber.usecase import BatchSubscriber

from ..logging import get_logger

log = get_logger(__name__)

COMMITTED, FAILED = "committed", "failed"  # a commit's outcome, as `observe` is told


class Position(Protocol):
    """Where a record is (the parts of an aiokafka ConsumerRecord read here)."""

    @property
    def topic(self) -> str: ...
    @property
    def partition(self) -> int: ...
    @property
    def offset(self) -> int: ...


class Committing(Protocol):
    """The parts of an AIOKafkaConsumer an `OffsetCommitter` uses."""

    def assignment(self) -> set[TopicPartition]: ...
    async def commit(self, offsets: Any = None) -> None: ...


class OffsetCommitter:
    """Commits, in the background, the offsets after the records handed to `advance`."""

    def __init__(
        self,
        name: str,
        *,
        interval: float = 0.0,
        observe: Callable[[str], None] = lambda outcome: None,
    ) -> None:
        self.name = name
        self.interval = interval  # seconds from one commit to the next, at least
        self.observe = observe  # told each commit's outcome: COMMITTED or FAILED
        self._sent_at = -math.inf
        self._hurry = asyncio.Event()  # a flush: commit now, whatever the interval
        self._consumer: Committing | None = None
        self._stored: dict[TopicPartition, int] = {}  # the next offset to read, per partition
        self._committed: dict[TopicPartition, int] = {}
        self._task: asyncio.Task[None] | None = None

    def advance(self, consumer: Committing, records: Iterable[Position]) -> None:
        """`records` are durably processed: commit past them, without waiting for it."""
        if consumer is not self._consumer:  # the subscriber started a new consumer
            self._consumer = consumer
            self._stored.clear()
            self._committed.clear()
        # A batch holds each partition's records in order (a poll, then its top-up), so
        # the last one seen is the partition's newest; plain tuples keep this loop cheap.
        newest: dict[tuple[str, int], int] = {}
        for record in records:
            newest[record.topic, record.partition] = record.offset
        stored = self._stored
        for (topic, number), offset in newest.items():
            partition = TopicPartition(topic, number)
            if offset >= stored.get(partition, 0):
                stored[partition] = offset + 1
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._commit_stored(), name=f"{self.name}-commit")

    async def flush(self) -> None:
        """Commit everything handed in so far, now, and wait for it (a failure is logged)."""
        self._hurry.set()
        try:
            if self._task is not None and not self._task.done():
                await self._task
            await self._commit_stored()
        finally:
            self._hurry.clear()

    def forget(self, partitions: Iterable[TopicPartition]) -> None:
        """`partitions` were revoked: their next owner commits them from now on."""
        for partition in partitions:
            self._stored.pop(partition, None)
            self._committed.pop(partition, None)

    def uncommitted(self) -> dict[TopicPartition, int]:
        """Offsets handed in and not yet committed, for partitions still assigned."""
        if self._consumer is None:
            return {}
        assigned = self._consumer.assignment()
        return {
            partition: offset
            for partition, offset in self._stored.items()
            if partition in assigned and self._committed.get(partition) != offset
        }

    async def _commit_stored(self) -> None:
        while (offsets := self.uncommitted()) and self._consumer is not None:
            wait = self._sent_at + self.interval - time.monotonic()
            if wait > 0 and not self._hurry.is_set():
                with suppress(TimeoutError):
                    await asyncio.wait_for(self._hurry.wait(), wait)
                continue  # what was stored meanwhile goes along
            self._sent_at = time.monotonic()
            try:
                await self._consumer.commit(offsets)
            except Exception as exc:  # kept: tried again with the next batch or the flush
                self.observe(FAILED)
                log.warning("consumer.commit_failed", consumer=self.name, error=repr(exc)[:300])
                return
            self.observe(COMMITTED)
            self._committed.update(offsets)


class CommitBeforeRevoke(ConsumerRebalanceListener):  # type: ignore[misc]
    """Before a rebalance takes partitions away, commit what was stored from them."""

    def __init__(self, committer: OffsetCommitter) -> None:
        self.committer = committer

    async def on_partitions_revoked(self, revoked: set[TopicPartition]) -> None:
        await self.committer.flush()
        self.committer.forget(revoked)

    async def on_partitions_assigned(self, assigned: set[TopicPartition]) -> None:
        """Nothing to do: a partition's position comes from its committed offset."""


def flush_before_stop(subscriber: object, committer: OffsetCommitter) -> None:
    """Let `subscriber` (what `broker.subscriber(..., batch=True)` returned) commit what
    was stored before it stops its consumer. Its stop runs in three steps: faststream's
    own first one (no further batch is handled; the one in hand finishes, within the
    broker's graceful timeout), the flush, then the rest of faststream's stop (its
    consume loop cancelled, the consumer stopped)."""
    if not isinstance(subscriber, BatchSubscriber):
        raise TypeError(f"not a faststream Kafka batch subscriber: {type(subscriber)!r}")
    stop = subscriber.stop

    async def stop_after_flush() -> None:
        await SubscriberUsecase.stop(subscriber)
        await committer.flush()
        await stop()

    subscriber.stop = stop_after_flush  # type: ignore[method-assign]
