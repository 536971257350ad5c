"""Batch subscribers: a batch "topped up" with what arrived while it was being fetched.

aiokafka prefetches: the moment `getmany` drains its buffer, the fetcher sends the next
fetch, the broker answers at once when there is data, and that answer waits in the
buffer while the batch is processed. Under load the next batch is therefore what was
produced during the *previous* one, and a record produced now is processed two batches
later (bench/batch_staleness.py; the alert path's hop 1 in bench/README.md). A second,
short `getmany` right after the first collects that answer, so a batch holds what was
produced up to its start: about one batch time less for every record.

Kafka commits positions, not messages, so the topped-up records must share the batch's
fate: they join the message's `raw_message`, whose records faststream's
`KafkaAckableMessage.nack` rewinds partition by partition (a partition present only in
the top-up would otherwise not be rewound, and the next ack, which commits the
consumer's positions, would commit past records never processed); `ack` commits the
positions the top-up advanced, after the batch's durable write like the rest.
"""

from __future__ import annotations

from itertools import chain
from typing import Any

from aiokafka.errors import KafkaError

from ..logging import get_logger

log = get_logger(__name__)


async def top_up(message: Any, *, timeout_ms: int, max_records: int) -> tuple[Any, ...]:
    """The batch's records plus those the consumer can read within `timeout_ms` (it
    returns as soon as any arrive), at most `max_records` in all; the message's
    `raw_message` becomes the whole batch, so its ack and nack cover every record.

    A batch of a single record is not topped up: it came from a fetch that waited for
    data on a quiet topic, where nothing is behind it and a top-up would only add its
    whole timeout to that record's latency. `timeout_ms <= 0` turns it off."""
    polled = message.raw_message
    records: tuple[Any, ...] = polled if isinstance(polled, tuple) else (polled,)
    room = max_records - len(records)
    # faststream's in-memory TestKafkaBroker hands over a consumer with nothing to read.
    getmany = getattr(message.consumer, "getmany", None)
    if timeout_ms <= 0 or len(records) < 2 or room <= 0 or getmany is None:
        return records
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
