"""GET /inbox/stream (Server-Sent Events) against a real uvicorn server on a
free port, read with httpx streaming; and the in-process hub behind it."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import event as sa_event
from sqlmodel import select

from kap_notifications.adapters.hub import Closed, InboxHub, InboxItem
from kap_notifications.adapters.tables import Notification
from kap_notifications.bootstrap import build
from kap_notifications.config import NotificationsSettings
from kap_notifications.handlers.inbox import NotificationView
from kap_notifications.handlers.notify import Notifier
from kap_shared.events import Envelope, decode
from kap_shared.messaging.consumer import EventConsumer
from kap_shared.messaging.outbox import OutboxMessage
from kap_shared.messaging.timers import TimerWorker
from kap_shared.messaging.unit_of_work import UnitOfWork
from kap_shared.service.runtime import ServiceRuntime
from kap_shared.testing import TEST_SECRET, UNREACHABLE_BROKER, serving, token

from . import factories as f
from .conftest import Clock, channel_settings
from .fakes import FakeSmsProvider, FakeSmtpServer

THERAPIST = token("th-ben", "therapist", ["site-a"])


@dataclass
class Live:
    app: FastAPI
    url: str
    clock: Clock

    @property
    def runtime(self) -> ServiceRuntime:
        runtime: ServiceRuntime = self.app.state.runtime
        return runtime

    @property
    def hub(self) -> InboxHub:
        hub: InboxHub = self.app.state.inbox_hub
        return hub

    @property
    def notifier(self) -> Notifier:
        notifier: Notifier = self.app.state.notifier
        return notifier

    async def deliver(self, event: Envelope) -> None:
        consumer = EventConsumer(
            group_id="notifications",
            sessions=self.runtime.sessions,
            handlers=self.notifier.handlers(),
        )
        assert await consumer.handle(decode(event.topic, event.to_json()))


@pytest.fixture
async def live(
    tmp_path: Path, sms: FakeSmsProvider, smtp: FakeSmtpServer, clock: Clock
) -> AsyncIterator[Live]:
    settings = NotificationsSettings(
        var_dir=tmp_path,
        kap_jwt_secret=TEST_SECRET,
        db_schema="create_all",
        kafka={"bootstrap_servers": UNREACHABLE_BROKER},
        sse_keepalive_seconds=0.3,
        delivery_worker_enabled=False,
        **channel_settings(sms, smtp),
    )
    app = build(settings)
    app.state.notifier.clock = clock
    # Closing the hub first is what __main__ does on SIGTERM.
    async with serving(app, before_stop=app.state.inbox_hub.close) as url:
        yield Live(app, url, clock)


@dataclass
class Sse:
    event: str | None = None
    id: str | None = None
    data: Any = None
    retry: int | None = None
    comments: list[str] = field(default_factory=list)


class SseReader:
    """Parses `text/event-stream` lines into events (comments kept)."""

    def __init__(self, response: httpx.Response) -> None:
        self.lines = response.aiter_lines()

    async def next(self, timeout: float = 5.0) -> Sse:
        return await asyncio.wait_for(self._next(), timeout)

    async def _next(self) -> Sse:
        event, seen = Sse(), False
        async for line in self.lines:
            if line == "":
                if seen:
                    return event
                continue
            seen = True
            name, _, value = line.partition(":")
            value = value.removeprefix(" ")
            if name == "":
                event.comments.append(value)
            elif name == "data":
                event.data = json.loads(value)
            elif name == "retry":
                event.retry = int(value)
            else:
                setattr(event, name, value)
        raise EOFError("stream ended")

    async def next_notification(self, timeout: float = 5.0) -> Sse:
        while True:
            event = await self.next(timeout)
            if event.event == "notification":
                return event


@contextlib.asynccontextmanager
async def stream(
    live: Live, headers: dict[str, str], last_event_id: str | None = None
) -> AsyncIterator[tuple[httpx.Response, SseReader]]:
    extra = {"Last-Event-ID": last_event_id} if last_event_id else {}
    async with (
        httpx.AsyncClient(base_url=live.url, timeout=10.0) as http,
        http.stream("GET", "/inbox/stream", headers={**headers, **extra}) as response,
    ):
        reader = SseReader(response)
        if response.status_code == 200:
            hello = await reader.next()
            assert hello.comments == ["connected"]
            assert hello.retry == 3000
        yield response, reader


async def test_stream_delivers_a_new_notification_to_a_connected_client(live: Live) -> None:
    async with stream(live, THERAPIST) as (response, reader):
        assert response.headers["content-type"].startswith("text/event-stream")
        assert response.headers["cache-control"] == "no-cache"
        event = f.plan_created()
        await live.deliver(event)

        got = await reader.next_notification()

    assert got.data["source_event_id"] == str(event.event_id)
    assert got.data["recipient_id"] == "th-ben"  # not the prescriber's copy
    assert (got.data["channel"], got.data["title"]) == ("in_app", "New patient assigned")
    assert got.id == got.data["notification_id"]
    # what the inbox shows, nothing more (no correlation id, no delivery lease)
    assert set(got.data) == set(NotificationView.model_fields)


async def test_stream_sends_keep_alive_comments_while_idle(live: Live) -> None:
    async with stream(live, THERAPIST) as (_, reader):
        idle = await reader.next(timeout=2.0)
    assert idle.comments == ["keep-alive"]
    assert idle.event is None


async def test_stream_shows_only_notifications_at_the_callers_sites(live: Live) -> None:
    site_b_only = token("th-ben", "therapist", ["site-b"])
    async with stream(live, site_b_only) as (_, reader):
        await live.deliver(f.plan_created(site_id="site-a"))
        other = f.plan_created("plan-b", patient_id="pt-b", site_id="site-b")
        await live.deliver(other)
        got = await reader.next_notification()
    assert got.data["source_event_id"] == str(other.event_id)


async def test_escalations_from_the_timer_worker_reach_the_stream(live: Live) -> None:
    """The hub is fed on commit by every part of the process, not only the consumer."""
    async with httpx.AsyncClient(base_url=live.url) as http:
        response = await http.put(
            "/sites/site-a/escalation",
            json={"levels": [{"after_seconds": 60, "recipient_ids": ["oncall-1"]}]},
            headers=token("admin-1", "admin", ["*"]),
        )
        assert response.status_code == 200
    await live.deliver(f.plan_created())
    await live.deliver(f.session_scheduled())
    alert = f.vitals_alert()
    await live.deliver(alert)
    timers = TimerWorker(live.runtime.sessions, live.notifier.timer_handlers(), clock=live.clock)
    async with stream(live, token("oncall-1", "prescriber", ["site-a"])) as (_, reader):
        live.clock.advance(61)
        assert await timers.fire_due() == 1
        got = await reader.next_notification()
    assert got.data["escalation_level"] == 1
    assert got.data["alert_id"] == str(alert.event_id)
    assert got.data["priority"] == "stat"


async def test_reconnecting_with_last_event_id_replays_what_was_missed(live: Live) -> None:
    events = [f.plan_created(f"plan-{n}", patient_id=f"pt-{n}") for n in range(3)]
    for event in events:
        await live.deliver(event)
    first_id = await _first_notification_id(live, events[0])

    async with stream(live, THERAPIST, last_event_id=first_id) as (_, reader):
        replayed = [await reader.next_notification(), await reader.next_notification()]
        live_one = f.plan_created("plan-9", patient_id="pt-9")
        await live.deliver(live_one)
        then = await reader.next_notification()

    assert [e.data["source_event_id"] for e in replayed] == [
        str(events[1].event_id),
        str(events[2].event_id),
    ]
    assert then.data["source_event_id"] == str(live_one.event_id)


async def _first_notification_id(live: Live, event: Envelope) -> str:
    async with live.runtime.sessions() as session:
        row = (
            await session.exec(
                select(Notification)
                .where(Notification.source_event_id == str(event.event_id))
                .where(Notification.recipient_id == "th-ben")
            )
        ).one()
        return row.notification_id


async def test_disconnect_unsubscribes_and_shutdown_ends_streams(live: Live) -> None:
    async with stream(live, THERAPIST):
        assert live.hub.subscriber_count == 1
    for _ in range(100):
        if live.hub.subscriber_count == 0:
            break
        await asyncio.sleep(0.05)
    assert live.hub.subscriber_count == 0

    async with stream(live, THERAPIST) as (_, reader):
        live.hub.close()
        assert await _until_closed(reader) == []  # ends at once (TimeoutError otherwise)


async def _until_closed(reader: SseReader) -> list[Sse]:
    seen = []
    try:
        while True:
            seen.append(await reader.next(timeout=2.0))
    except EOFError:
        return seen


@pytest.mark.parametrize(
    ("headers", "status"),
    [({}, 401), ({"Authorization": "Bearer garbage"}, 401), (token("d", "device", ["*"]), 403)],
    ids=["no token", "bad token", "device"],
)
async def test_stream_needs_a_clinicians_token(
    live: Live, headers: dict[str, str], status: int
) -> None:
    async with stream(live, headers) as (response, _):
        assert response.status_code == status


# -- the hub ---------------------------------------------------------------------------------------


def _item(n: int, recipient: str = "th-ben") -> InboxItem:
    return InboxItem(f"n-{n}", recipient, "site-a", {"n": n})


async def test_hub_routes_items_to_their_recipients_only() -> None:
    hub = InboxHub()
    ben, ada = hub.subscribe("th-ben"), hub.subscribe("rx-ada")
    hub.publish([_item(1), _item(2, "rx-ada")])
    assert (await ben.next(0.1), await ada.next(0.1)) == (_item(1), _item(2, "rx-ada"))
    assert await ben.next(0.05) is None  # timeout: time for a keep-alive


async def test_a_published_item_reaches_the_waiting_stream_in_one_event_loop_turn() -> None:
    """The push after a commit is not queued behind further turns of the loop (each as long
    as whatever else is ready then: the relay, the consumer's offset commit)."""
    hub = InboxHub()
    subscription = hub.subscribe("th-ben")
    taken: list[InboxItem | None] = []

    async def stream() -> None:
        taken.append(await subscription.next(5))

    reader = asyncio.create_task(stream())
    await asyncio.sleep(0)  # the stream's task now waits for an item
    hub.publish([_item(1)])
    await asyncio.sleep(0)  # one turn of the loop
    assert taken == [_item(1)]
    await reader


async def test_hub_drops_a_client_that_cannot_keep_up() -> None:
    hub = InboxHub(queue_size=2)
    slow = hub.subscribe("th-ben")
    hub.publish([_item(1), _item(2), _item(3)])
    assert hub.subscriber_count == 0
    with pytest.raises(Closed, match="lagging"):
        await slow.next(0.1)


async def test_hub_feeds_on_commit_never_on_rollback(live: Live) -> None:
    hub = live.hub
    seen = hub.subscribe("th-ben")

    async with UnitOfWork(live.runtime.sessions) as uow:
        uow.after_commit(lambda: hub.publish([_item(1)]))
        # no commit: rolled back
    assert await seen.next(0.05) is None

    async with UnitOfWork(live.runtime.sessions) as uow:
        uow.after_commit(lambda: hub.publish([_item(2)]))
        await uow.commit()
    assert await seen.next(0.1) == _item(2)
    hub.unsubscribe(seen)


async def test_hub_closed_before_subscribing_ends_at_once() -> None:
    hub = InboxHub()
    hub.close()
    with pytest.raises(Closed):
        await hub.subscribe("th-ben").next(0.1)
    hub.close_threadsafe()  # no loop seen yet: just marks it closed
    assert hub.closed


# -- across replicas ------------------------------------------------------------------------------


async def test_a_notification_created_by_another_instance_reaches_this_instances_stream(
    live: Live,
) -> None:
    """Another replica (same database, its own hub) creates the notification; this one
    learns of it from NotificationSent on the topic (its per-instance live group) and
    streams it once, even if it is offered twice."""
    other = Notifier(rules=live.notifier.rules, hub=InboxHub(), clock=live.clock)
    consumer = EventConsumer(
        group_id="notifications", sessions=live.runtime.sessions, handlers=other.handlers()
    )
    async with stream(live, THERAPIST) as (_, reader):
        event = f.plan_created()
        assert await consumer.handle(decode(event.topic, event.to_json()))
        [announced] = await _announced(live, "th-ben")
        live_consumer = live.app.state.live_consumer
        assert live_consumer.group_id.startswith("notifications-live-")
        body = json.dumps(announced.payload).encode()
        assert await live_consumer.dispatch(announced.headers, body) == "delivered"
        assert await live_consumer.dispatch(announced.headers, body) == "delivered"

        got = await reader.next_notification()
        assert got.data["source_event_id"] == str(event.event_id)
        assert got.data["recipient_id"] == "th-ben"
        # The second offer is not streamed again: the next item is the next notification.
        later = f.plan_created("plan-2", patient_id="pt-2")
        await live.deliver(later)
        assert (await reader.next_notification()).data["source_event_id"] == str(later.event_id)
        future = {"event_type": "NotificationRead", "data": {}}
        assert await live_consumer.dispatch(None, json.dumps(future).encode()) == "skipped"
        assert await live_consumer.dispatch(None, b"\x00junk") == "failed"


async def test_the_echo_of_a_notification_this_instance_streamed_costs_no_database_read(
    live: Live,
) -> None:
    """The creating instance gave the notification to its streams on commit; its echo from
    the topic (NotificationSent, meant for the other instances) is skipped here before any
    database read, unless a stream connected meanwhile has not had it."""
    reads: list[str] = []

    def record(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        if "FROM notifications" in statement:  # not the workers' polls
            reads.append(statement)

    engine = live.runtime.engine.sync_engine
    live_consumer = live.app.state.live_consumer
    async with stream(live, THERAPIST) as (_, reader):
        await live.deliver(f.plan_created())
        got = await reader.next_notification()
        [announced] = await _announced(live, "th-ben")
        body = json.dumps(announced.payload).encode()
        sa_event.listen(engine, "before_cursor_execute", record)
        try:
            assert await live_consumer.dispatch(announced.headers, body) == "delivered"
            assert reads == []
            async with stream(live, THERAPIST) as (_, later):
                assert await live_consumer.dispatch(announced.headers, body) == "delivered"
                assert len(reads) == 1  # the row, loaded for the stream that lacked it
                assert (await later.next_notification()).id == got.id
        finally:
            sa_event.remove(engine, "before_cursor_execute", record)


async def _announced(live: Live, recipient_id: str) -> list[OutboxMessage]:
    """The NotificationSent rows in the outbox for `recipient_id`."""
    async with live.runtime.sessions() as session:
        rows = await session.exec(
            select(OutboxMessage).where(OutboxMessage.event_type == "NotificationSent")
        )
        return [r for r in rows if r.payload["data"]["recipient_id"] == recipient_id]
