"""Consumers that let the broker gather events before it answers (CONSUMER_LINGER_MS).

A Kafka consumer's fetch waits at the broker until `fetch.min.bytes` are there or
`fetch.max.wait.ms` has passed. aiokafka's defaults (1 byte, 500 ms) answer the moment
any event arrives: right for the alert path, where every millisecond counts. A read
model that may lag (records' timeline, its readings) lingers instead: the broker holds
the fetch for the linger unless a backlog fills `LINGER_MIN_BYTES`, and the consumer
takes what arrived meanwhile as one batch. That is fewer, larger units of work (one
batch of readings instead of one per reading at a clinic's rate), and none of them in
the few milliseconds after each event, when the services on the alert path need the
machine's cores (bench/README.md, alert round 17). A backlog is read as fast as before:
a full fetch is answered at once.

Nothing else changes: offsets are still committed after the durable write, a
redelivery is still absorbed by the inbox (or the readings' key).
"""

from __future__ import annotations

from typing import NamedTuple

# How long a read model lingers by default (records, the console's live feed): a
# timeline or a card a quarter of a second behind is invisible to a clinician.
READ_MODEL_LINGER_MS = 250

# A lingering fetch returns early only when this much is waiting: a backlog, never a
# trickle (at 2,000 readings/s a quarter of a second is ~200 KiB).
LINGER_MIN_BYTES = 1024 * 1024


class FetchWait(NamedTuple):
    """A consumer's `fetch_max_wait_ms` and `fetch_min_bytes` (aiokafka's names)."""

    max_wait_ms: int
    min_bytes: int


# aiokafka's defaults: answered as soon as any record is there (the wait only bounds an
# empty fetch).
AT_ONCE = FetchWait(max_wait_ms=500, min_bytes=1)


def fetch_wait(linger_ms: int) -> FetchWait:
    """How a consumer lingering `linger_ms` fetches (0: at once)."""
    if linger_ms <= 0:
        return AT_ONCE
    return FetchWait(max_wait_ms=linger_ms, min_bytes=LINGER_MIN_BYTES)
