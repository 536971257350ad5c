"""Live updates: one Kafka consumer per console instance, fanned out to browsers.

The consumer group is `console-<instance id>` (CONTRACT 6.1) with
`auto_offset_reset=latest`: each replica sees every new event (a shared group
would split them between replicas), and a restarted console does not replay
history: pages load current state from the services' APIs, events only say
what to fetch again. Offsets are auto-committed: nothing is lost by skipping,
the next page load is authoritative. The feed lingers (CONSUMER_LINGER_MS, 250 ms): the
broker holds each fetch for that long unless a backlog fills it, so the feed takes what
arrived meanwhile at once (`kap_shared.messaging.linger`).

`LiveHub` numbers each `LiveEvent`, keeps the last 10,000 in memory and hands each to
the connected streams whose clinician works at the event's site. A page opens its stream
with the position it was rendered at, and a reconnecting one sends its last id: each is
first given the events it missed (the ones that arrived while the page was loading, or
while its stream was down or closed for lagging). When the hub cannot say what was
missed (a position from another replica or from before a restart, older than what it
keeps, or from before the feed rejoined the topics and may have missed events) the page
is told to read everything it shows again.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import secrets
from collections.abc import Iterable

from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener

from kap_shared.http.streams import StreamQueue
from kap_shared.logging import get_logger
from kap_shared.messaging.linger import fetch_wait
from kap_shared.ops.kafka import client_kwargs
from kap_shared.service.metrics import ServiceMetrics
from kap_shared.settings import KafkaSettings

from ..domain.live import LiveEvent, Logged, ReplayLog, parse

log = get_logger(__name__)

# How long stopping the feed's consumer may take. Stopping commits its auto-committed
# offsets and leaves the group; with the broker gone aiokafka may retry that for minutes
# (60 s and 298 s in two of five runs of services/console/tests/test_console_live_feed.py),
# and the console's shutdown (uvicorn waits for the lifespan) with it.
STOP_TIMEOUT_SECONDS = 5.0


class Subscription(StreamQueue[Logged]):
    """One browser's stream: the events of the sites its clinician works at.

    `resume_from` is the position its first message carries (the SSE id a reconnection
    sends back); `resync` says the hub could not tell it what it missed, so the page must
    read everything it shows again."""

    def __init__(self, sites: Iterable[str], size: int, resume_from: str) -> None:
        super().__init__(size)
        self.sites = frozenset(sites)
        self.resume_from = resume_from
        self.resync = False

    def wants(self, event: LiveEvent) -> bool:
        return event.site_id in self.sites or "*" in self.sites


class LiveHub:
    """Numbers each event (`ReplayLog`) and hands it to the streams that want it.

    A page passes the position it was rendered at (or its stream's last id, when it
    reconnects) and is first given what it missed since, or told to read everything
    again when the hub cannot say."""

    def __init__(self, queue_size: int = 1000, replay_size: int = 10_000) -> None:
        self._subscriptions: set[Subscription] = set()
        self._queue_size = queue_size
        self._loop: asyncio.AbstractEventLoop | None = None
        self._log = ReplayLog(epoch=secrets.token_hex(4), size=replay_size)

    @property
    def position(self) -> str:
        """Where a page rendered now resumes from: take it *before* reading the services."""
        return self._log.position

    def subscribe(self, sites: Iterable[str], since: str | None = None) -> Subscription:
        self._loop = asyncio.get_running_loop()
        subscription = Subscription(sites, self._queue_size, self._log.position)
        if since is not None:
            logged = self._log.since(since)
            missed = [m for m in logged or () if subscription.wants(m.event)]
            # More than the stream's queue holds would close it at once, and its
            # reconnection would ask for the same again: read everything instead.
            if logged is None or len(missed) >= self._queue_size:
                subscription.resync = True
            else:
                if missed:
                    subscription.resume_from = since
                for item in missed:
                    subscription.offer(item)
        self._subscriptions.add(subscription)
        return subscription

    def unsubscribe(self, subscription: Subscription) -> None:
        self._subscriptions.discard(subscription)
        subscription.close()

    def publish(self, event: LiveEvent) -> None:
        logged = self._log.append(event)
        for subscription in list(self._subscriptions):
            if subscription.wants(event):
                subscription.offer(logged)

    def gap(self) -> None:
        """The feed may have missed events (its reader rejoined the topics' partitions):
        every open stream is closed, and its reconnection told to read everything."""
        self._log.gap()
        self.close_all()

    @property
    def listeners(self) -> int:
        return len(self._subscriptions)

    def close_all(self) -> None:
        for subscription in list(self._subscriptions):
            subscription.close()

    def close_threadsafe(self) -> None:
        """From a signal handler: end every stream on the event loop's thread."""
        if self._loop is not None and not self._loop.is_closed():
            self._loop.call_soon_threadsafe(self.close_all)


class _GapOnAssignment(ConsumerRebalanceListener):  # type: ignore[misc]
    """Partitions (re)assigned: the feed starts again from the latest offsets or its
    last commit, so events in between may never reach the hub (`LiveHub.gap`)."""

    def __init__(self, hub: LiveHub) -> None:
        self._hub = hub

    async def on_partitions_revoked(self, revoked: object) -> None:
        return None

    async def on_partitions_assigned(self, assigned: object) -> None:
        self._hub.gap()


class LiveFeed:
    """Reads `topics` in this instance's own consumer group and feeds the hub."""

    def __init__(
        self,
        kafka: KafkaSettings,
        topics: Iterable[str],
        group_id: str,
        hub: LiveHub,
        metrics: ServiceMetrics | None = None,
        linger_ms: int = 0,
    ) -> None:
        self._metrics = metrics
        self._fetch = fetch_wait(linger_ms)
        self._kafka = kafka
        self._topics = tuple(topics)
        self._group_id = group_id
        self._hub = hub
        self._task: asyncio.Task[None] | None = None
        self._consumer: AIOKafkaConsumer | None = None

    @property
    def ready(self) -> bool:
        """Joined the group and got partitions: events from now on reach the browsers."""
        return self._consumer is not None and bool(self._consumer.assignment())

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="console-live-feed")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _run(self) -> None:
        delay = 0.5
        while True:  # the broker may come later than the console (start-up order independence)
            consumer = AIOKafkaConsumer(
                **client_kwargs(self._kafka, client_id=self._group_id),
                group_id=self._group_id,
                auto_offset_reset="latest",
                enable_auto_commit=True,
                fetch_max_wait_ms=self._fetch.max_wait_ms,
                fetch_min_bytes=self._fetch.min_bytes,
                # A topic created later (records, say) joins within this interval.
                metadata_max_age_ms=30_000,
            )
            # A pattern, not a topic list: subscribing by name would make the broker
            # auto-create a topic that does not exist yet (with the wrong partition
            # count); a pattern only ever matches topics their producers created.
            pattern = "^(" + "|".join(re.escape(t) for t in self._topics) + ")$"
            consumer.subscribe(pattern=pattern, listener=_GapOnAssignment(self._hub))
            try:
                await consumer.start()
                self._consumer = consumer
                delay = 0.5
                log.info("live.started", group=self._group_id, topics=list(self._topics))
                async for record in consumer:
                    headers = {
                        key: value.decode(errors="replace")
                        for key, value in (record.headers or ())
                        if value is not None
                    }
                    event = parse(record.topic, record.value, headers)
                    if event is not None:
                        self._hub.publish(event)
                    if self._metrics is not None:
                        self._metrics.events_consumed.labels(
                            record.topic,
                            event.event_type if event else "unknown",
                            "forwarded" if event else "skipped",
                        ).inc()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                self._consumer = None
                log.warning("live.reconnecting", error=repr(exc)[:300], delay=delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 10.0)
            finally:
                with contextlib.suppress(Exception):  # TimeoutError included: gone anyway
                    async with asyncio.timeout(STOP_TIMEOUT_SECONDS):
                        await consumer.stop()
