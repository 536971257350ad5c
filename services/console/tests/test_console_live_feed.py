"""The console's live feed against a real broker of its own: it stops even when the
broker is gone first (a cluster taken down before the console, a lost network). Its
consumer's own stop retries committing offsets to a coordinator that no longer answers,
for minutes, and held the console's shutdown with it."""

from __future__ import annotations

import asyncio
import uuid

import pytest
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from kap_console.adapters.live import STOP_TIMEOUT_SECONDS, LiveFeed, LiveHub
from kap_local.kafka import LocalKafka
from kap_shared.settings import KafkaSettings

pytestmark = pytest.mark.kafka

# Bounds for a loaded machine, not measures.
WAIT_SECONDS = 60
STOP_SLACK_SECONDS = 15


async def test_the_feed_stops_when_the_broker_went_away_first() -> None:
    kafka = LocalKafka(partitions=1)
    bootstrap = await asyncio.to_thread(kafka.start)
    try:
        topic = f"kap.test-live-{uuid.uuid4().hex[:8]}"
        admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
        await admin.start()
        try:
            await admin.create_topics([NewTopic(topic, 1, 1)])
        finally:
            await admin.close()
        feed = LiveFeed(KafkaSettings(bootstrap_servers=bootstrap), [topic], "console-t", LiveHub())
        feed.start()
        async with asyncio.timeout(WAIT_SECONDS):
            while not feed.ready:  # noqa: ASYNC110 (joined the group, partitions assigned)
                await asyncio.sleep(0.05)
    finally:
        await asyncio.to_thread(kafka.stop)

    # Unbounded, the consumer's stop took one to five minutes here (retrying its commit).
    async with asyncio.timeout(STOP_TIMEOUT_SECONDS + STOP_SLACK_SECONDS):
        await feed.stop()
