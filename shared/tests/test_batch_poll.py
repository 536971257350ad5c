"""A batch subscriber's poll against a real broker: with `poll_without_idle_sleep`, an
empty poll is followed by the next poll, never by faststream's sleep of
`batch_timeout_ms` (during which a record arriving on a quiet topic waited for nobody:
the alert path's hop 1, bench/README.md round 13), and records still arrive in batches."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import anyio
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from faststream import AckPolicy
from faststream.kafka import KafkaBroker
from faststream.kafka.annotations import KafkaMessage

from kap_shared.messaging.batches import poll_without_idle_sleep

pytestmark = pytest.mark.kafka

BATCH_TIMEOUT_MS = 20


def test_an_empty_poll_is_followed_by_the_next_poll_not_a_sleep(
    kafka_bootstrap: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    sleeps: list[float] = []
    empty_polls = 0
    quiet = asyncio.Event()  # set after five empty polls
    real_sleep, real_getmany = anyio.sleep, AIOKafkaConsumer.getmany

    async def recording_sleep(delay: float, *args: Any, **kwargs: Any) -> None:
        sleeps.append(delay)
        await real_sleep(delay, *args, **kwargs)

    async def counting_getmany(self: AIOKafkaConsumer, *args: Any, **kwargs: Any) -> Any:
        nonlocal empty_polls
        polled = await real_getmany(self, *args, **kwargs)
        if not polled and kwargs.get("timeout_ms") == BATCH_TIMEOUT_MS:
            empty_polls += 1
            if empty_polls >= 5:
                quiet.set()
        return polled

    monkeypatch.setattr(anyio, "sleep", recording_sleep)
    monkeypatch.setattr(AIOKafkaConsumer, "getmany", counting_getmany)

    async def scenario() -> list[bytes]:
        topic = f"kap.test-poll-{uuid.uuid4().hex[:10]}"
        received: list[bytes] = []
        arrived = asyncio.Event()
        broker = KafkaBroker(kafka_bootstrap, logger=None, graceful_timeout=1)
        subscriber = broker.subscriber(
            topic,
            batch=True,
            group_id=f"poll-{uuid.uuid4().hex[:6]}",
            ack_policy=AckPolicy.MANUAL,
            auto_offset_reset="earliest",
            max_records=100,
            batch_timeout_ms=BATCH_TIMEOUT_MS,
        )
        poll_without_idle_sleep(subscriber)

        @subscriber
        async def on_batch(message: KafkaMessage) -> None:
            polled = message.raw_message
            records = polled if isinstance(polled, tuple) else (polled,)
            received.extend(record.value for record in records)
            await message.ack()
            arrived.set()

        await broker.start()
        try:
            async with asyncio.timeout(60):
                await quiet.wait()  # the topic is empty: every poll so far found nothing
            producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap)
            await producer.start()
            try:
                await producer.send_and_wait(topic, b"after-the-quiet")
            finally:
                await producer.stop()
            async with asyncio.timeout(60):
                await arrived.wait()
        finally:
            await broker.stop()
        return received

    assert asyncio.run(scenario()) == [b"after-the-quiet"]
    # faststream's own loop sleeps `batch_timeout_ms` after each of those empty polls.
    assert BATCH_TIMEOUT_MS / 1000 not in sleeps


def test_only_a_batch_subscriber_is_accepted() -> None:
    broker = KafkaBroker("localhost:9092")
    one_at_a_time = broker.subscriber("kap.test-poll", group_id="poll")
    with pytest.raises(TypeError, match="batch subscriber"):
        poll_without_idle_sleep(one_at_a_time)
