"""Batch subscribers: a poll without faststream's idle sleep, and a batch "topped up" with
what arrived while it was being fetched.

faststream's Kafka batch subscriber polls with `getmany(timeout_ms=batch_timeout_ms)`,
which returns as soon as records arrive, and after a poll that found nothing it also
*sleeps* `batch_timeout_ms`. On a quiet topic (a clinic's rate: a reading per chair
every few seconds) the subscriber is then asleep half the time, and a reading arriving
meanwhile waits up to `batch_timeout_ms` before anyone looks (the alert path's hop 1 in
bench/README.md). `poll_without_idle_sleep` makes the poll the only wait.

aiokafka prefetches: the moment `getmany` drains its buffer, the fetcher sends the next
fetch, the broker answers at once when there is data, and that answer waits in the
buffer while the batch is processed. Under load the next batch is therefore what was
produced during the *previous* one, and a record produced now is processed two batches
later (bench/batch_staleness.py; the alert path's hop 1 in bench/README.md). A second,
short `getmany` right after the first collects that answer, so a batch holds what was
produced up to its start: about one batch time less for every record. That pays only
when the consumer is behind, i.e. when the batch is stale: its newest record is at
least `stale_ms` old. A fresh batch means the consumer keeps up, and a top-up would
mostly wait for records not produced yet, its whole timeout added to every record in
the batch (bench/README.md, round 13). The age is the record's timestamp (the
producer's clock, Kafka's CreateTime) against this host's: a producer clock running
ahead makes batches look fresh (no top-up), one running behind makes them look stale (a
top-up every batch); neither loses nor repeats a record.

Kafka commits positions, not messages, so the topped-up records must share the batch's
fate: they join the message's `raw_message`, whose records faststream's
`KafkaAckableMessage.nack` rewinds partition by partition (a partition present only in
the top-up would otherwise not be rewound: the consumer would read on past records never
processed, and the next batch's commit would go past them); the batch's offsets, handed
to its `OffsetCommitter` after the durable write, include the top-up's.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from itertools import chain
from typing import Any

from aiokafka import AIOKafkaConsumer
from aiokafka.errors import KafkaError
from faststream.kafka.subscriber.usecase import BatchSubscriber

from ..logging import get_logger

log = get_logger(__name__)


def poll_without_idle_sleep(subscriber: object) -> None:
    """Let `subscriber` (what `broker.subscriber(..., batch=True)` returned) wait for
    records in its poll only: an empty poll is followed by the next poll, which again
    returns the moment a record arrives, instead of a sleep that no arrival ends."""
    if not isinstance(subscriber, BatchSubscriber):
        raise TypeError(f"not a faststream Kafka batch subscriber: {type(subscriber)!r}")

    async def get_msg(consumer: AIOKafkaConsumer) -> tuple[Any, ...]:
        polled = await consumer.getmany(
            timeout_ms=subscriber.batch_timeout_ms, max_records=subscriber.max_records
        )
        return tuple(chain.from_iterable(polled.values()))

    # faststream's consume loop calls `self.get_msg(consumer)` and skips an empty tuple.
    subscriber.get_msg = get_msg  # type: ignore[method-assign]


async def top_up(
    message: Any,
    *,
    timeout_ms: int,
    max_records: int,
    stale_ms: float,
    now: Callable[[], float] = time.time,
) -> tuple[Any, ...]:
    """The batch's records plus those the consumer can read within `timeout_ms` (it
    returns as soon as any arrive), at most `max_records` in all; the message's
    `raw_message` becomes the whole batch, so its nack covers every record.

    Only a stale batch is topped up: its newest record is at least `stale_ms` old by
    `now()` (seconds since the epoch). A batch of a single record is not either: it
    came from a fetch that waited for data on a quiet topic, where nothing is behind
    it. `timeout_ms <= 0` turns the top-up off."""
    polled = message.raw_message
    records: tuple[Any, ...] = polled if isinstance(polled, tuple) else (polled,)
    room = max_records - len(records)
    # faststream's in-memory TestKafkaBroker hands over a consumer with nothing to read.
    getmany = getattr(message.consumer, "getmany", None)
    if timeout_ms <= 0 or len(records) < 2 or room <= 0 or getmany is None:
        return records
    if now() * 1000 - max(record.timestamp for record in records) < stale_ms:
        return records  # fresh: the consumer keeps up
    try:
        fresher = await getmany(timeout_ms=timeout_ms, max_records=room)
    except KafkaError as exc:
        # A fetch error for some partition (nothing of it was returned, its position
        # did not move); the next poll fetches that partition again and faststream's
        # loop handles the error there. This batch goes on as it is.
        log.warning("consumer.top_up_failed", error=repr(exc)[:300])
        return records
    if fresher:
        records = (*records, *chain.from_iterable(fresher.values()))
        message.raw_message = records
    return records
