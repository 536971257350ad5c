"""The console's live feed against a real broker: it lingers as configured and still
forwards events; and, on a broker of its own, it stops even when the broker is gone
first (a cluster taken down before the console, a lost network). Its
consumer's own stop retries committing offsets to a coordinator that no longer answers,
and held the console's shutdown with it: 60 s and 298 s in two runs of this test without
the bound. Not every run hangs (three later runs stopped within 20 s unbounded), so this
test guards the bound rather than proving the hang each time."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest
from aiokafka import AIOKafkaProducer
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from kap_console.adapters.live import STOP_TIMEOUT_SECONDS, LiveFeed, LiveHub
from kap_console.bootstrap import build
from kap_console.config import ConsoleSettings
from kap_local.kafka import LocalKafka
from kap_shared.events.topics import MONITORING_EVENTS
from kap_shared.messaging.topics_admin import ensure_topics
from kap_shared.settings import KafkaSettings

from .test_console_sign_in import CONSOLE, settings

pytestmark = pytest.mark.kafka

# Bounds for a loaded machine, not measures.
WAIT_SECONDS = 60
STOP_SLACK_SECONDS = 15


def _forwarded(metrics: str) -> float:
    return sum(
        sample.value
        for family in text_string_to_metric_families(metrics)
        for sample in family.samples
        if sample.name == "kap_events_consumed_total"
        and sample.labels.get("topic") == MONITORING_EVENTS
        and sample.labels.get("outcome") == "forwarded"
    )


# What monitoring's relay puts on the topic (the contract's released example).
ALERT = Path(__file__).parents[3] / "contracts" / "examples" / "VitalsAlert.json"


async def _produce_alert(bootstrap: str) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap)
    await producer.start()
    try:
        await producer.send_and_wait(MONITORING_EVENTS, ALERT.read_bytes())
    finally:
        await producer.stop()


async def _topics_as_services_create_them(console: ConsoleSettings) -> None:
    """The feed subscribes by pattern, so it has partitions once the topics exist. The
    broker is the session's, which the end-to-end platform uses later: its topics are
    created exactly as a service creates them at start-up (3 partitions, so that two
    replicas of a service can share each topic), never with fewer."""
    await ensure_topics(
        console.kafka,
        partitions=console.kafka_topic_partitions,
        replication=console.kafka_topic_replication,
    )


def test_the_feed_lingers_as_configured_and_still_forwards_events(kafka_bootstrap: str) -> None:
    """CONSUMER_LINGER_MS (console: 250 ms) reaches the feed's consumer: the broker holds
    its fetches unless a backlog fills them (how a held fetch batches what arrives:
    shared/tests/test_consumer_linger.py), and the events still reach the console."""
    console = settings(kafka={"bootstrap_servers": kafka_bootstrap})
    asyncio.run(_topics_as_services_create_them(console))
    app = build(console)
    with TestClient(app, base_url=CONSOLE) as client:
        deadline = time.monotonic() + WAIT_SECONDS
        while client.get("/readyz").status_code != 200:
            assert time.monotonic() < deadline, "the live feed never joined its group"
            time.sleep(0.05)
        linger_ms = app.state.settings.consumer_linger_ms
        assert linger_ms > 0  # the console lingers unless told otherwise
        consumer = app.state.live_feed._consumer
        assert consumer._fetch_max_wait_ms == linger_ms
        assert consumer._fetch_min_bytes > 1  # a trickle never answers a held fetch early

        # One alert at a time until two were forwarded: the feed starts from the latest
        # offset, which it may resolve only after an alert produced right after joining.
        deadline = time.monotonic() + WAIT_SECONDS
        while _forwarded(client.get("/metrics").text) < 2:
            assert time.monotonic() < deadline, "the lingering feed did not forward events"
            asyncio.run(_produce_alert(kafka_bootstrap))
            time.sleep(linger_ms / 1000 * 2)


def test_a_page_rendered_before_the_feed_joined_its_partitions_is_told_to_read_again(
    kafka_bootstrap: str,
) -> None:
    """Until the feed has its partitions (and again after it rejoins them) events may pass
    it by, so a page rendered before then cannot be replayed what it missed: its stream
    opens with `resync` (the page reads everything it shows again)."""
    console = settings(kafka={"bootstrap_servers": kafka_bootstrap})
    asyncio.run(_topics_as_services_create_them(console))
    app = build(console)
    hub: LiveHub = app.state.live_hub
    rendered = hub.position
    with TestClient(app, base_url=CONSOLE) as client:
        deadline = time.monotonic() + WAIT_SECONDS
        while client.get("/readyz").status_code != 200:
            assert time.monotonic() < deadline, "the live feed never joined its group"
            time.sleep(0.05)

        async def opens(since: str) -> bool:
            subscription = hub.subscribe(["*"], since)
            hub.unsubscribe(subscription)
            return subscription.resync

        portal = client.portal
        assert portal is not None  # set while the client is open
        assert portal.call(opens, rendered)
        assert not portal.call(opens, hub.position)  # a page rendered now


async def test_the_feed_stops_when_the_broker_went_away_first() -> None:
    kafka = LocalKafka(partitions=1)
    bootstrap = await asyncio.to_thread(kafka.start)
    try:
        own_broker = KafkaSettings(bootstrap_servers=bootstrap)
        # The broker is this test's own: the platform's topics, as a service creates them.
        await ensure_topics(own_broker, partitions=1, replication=1)
        feed = LiveFeed(own_broker, [MONITORING_EVENTS], "console-t", LiveHub())
        feed.start()
        async with asyncio.timeout(WAIT_SECONDS):
            while not feed.ready:  # noqa: ASYNC110 (joined the group, partitions assigned)
                await asyncio.sleep(0.05)
    finally:
        await asyncio.to_thread(kafka.stop)

    # Bounded: never longer than the bound and some slack, whatever aiokafka retries.
    async with asyncio.timeout(STOP_TIMEOUT_SECONDS + STOP_SLACK_SECONDS):
        await feed.stop()
