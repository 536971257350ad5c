"""Fixtures for notifications' unit tests: the app in-process on a throw-away
SQLite DB, its consumer path, its workers driven by a fake clock, and real
local SMS (HTTP) and SMTP servers standing in for the providers."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from kap_notifications.bootstrap import build
from kap_notifications.config import NotificationsSettings
from kap_notifications.handlers.delivery import DeliveryWorker
from kap_notifications.handlers.notify import Notifier
from kap_shared.events import Envelope, decode
from kap_shared.events.enums import Channel
from kap_shared.events.envelope import utc_now
from kap_shared.messaging.consumer import EventConsumer
from kap_shared.messaging.timers import TimerWorker
from kap_shared.service.runtime import ServiceRuntime
from kap_shared.testing import database_file, rows, service_client, token

from .fakes import FakeSmsProvider, FakeSmtpServer

ADMIN = ("admin-1", "admin", ["*"])
SMS_TOKEN = "sms-provider-token"


def ts(value: Any) -> datetime:
    """A timestamp column read with raw SQL (SQLite gives text) as an aware datetime."""
    parsed = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


class Clock:
    """A fake clock for the app's notifier and workers. It starts in the future
    (so the runtime's real-time timer worker never fires what tests schedule)
    and ticks 1 ms per reading, so creation order is deterministic."""

    def __init__(self, start: datetime = datetime(2030, 1, 15, 15, 0, tzinfo=UTC)) -> None:
        assert start > utc_now() + timedelta(days=30), "the fake clock must be in the future"
        self.now = start

    def __call__(self) -> datetime:
        now = self.now
        self.now += timedelta(milliseconds=1)
        return now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)

    def set(self, at: datetime) -> None:
        self.now = at


@pytest.fixture(scope="session")
def sms_provider() -> Iterator[FakeSmsProvider]:
    provider = FakeSmsProvider()
    yield provider
    provider.close()


@pytest.fixture(scope="session")
def smtp_server() -> Iterator[FakeSmtpServer]:
    server = FakeSmtpServer()
    yield server
    server.close()


@pytest.fixture
def sms(sms_provider: FakeSmsProvider) -> FakeSmsProvider:
    sms_provider.reset()
    return sms_provider


@pytest.fixture
def smtp(smtp_server: FakeSmtpServer) -> FakeSmtpServer:
    smtp_server.reset()
    return smtp_server


@pytest.fixture
def clock() -> Clock:
    return Clock()


def channel_settings(sms: FakeSmsProvider, smtp: FakeSmtpServer) -> dict[str, Any]:
    return {
        "sms_webhook_url": sms.url,
        "sms_webhook_token": SMS_TOKEN,
        "sms_timeout_seconds": 2.0,
        "smtp_host": "127.0.0.1",
        "smtp_port": smtp.port,
        "smtp_starttls": False,
        "smtp_from": "alerts@kap.example",
        "smtp_timeout_seconds": 2.0,
        "delivery_max_attempts": 3,
        "delivery_backoff_seconds": 10.0,
        "delivery_lease_seconds": 30.0,
    }


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    """Per-test extra settings (override this fixture in a module)."""
    return {}


@pytest.fixture
def client(
    tmp_path: Path,
    sms: FakeSmsProvider,
    smtp: FakeSmtpServer,
    clock: Clock,
    settings_overrides: dict[str, Any],
) -> Iterator[TestClient]:
    overrides = {
        **channel_settings(sms, smtp),
        # Tests drive the delivery worker by hand, on the fake clock.
        "delivery_worker_enabled": False,
        **settings_overrides,
    }
    with service_client(NotificationsSettings, build, tmp_path, **overrides) as test_client:
        app = test_client.app
        assert isinstance(app, FastAPI)
        app.state.notifier.clock = clock
        app.state.delivery_worker.clock = clock
        yield test_client


db = database_file(NotificationsSettings)


def _app(client: TestClient) -> FastAPI:
    app = client.app
    assert isinstance(app, FastAPI)
    return app


@dataclass
class Harness:
    """The app plus handles on its consumer, workers and database."""

    client: TestClient
    db: Path
    clock: Clock
    sms: FakeSmsProvider
    smtp: FakeSmtpServer

    @property
    def runtime(self) -> ServiceRuntime:
        runtime: ServiceRuntime = _app(self.client).state.runtime
        return runtime

    @property
    def notifier(self) -> Notifier:
        notifier: Notifier = _app(self.client).state.notifier
        return notifier

    @property
    def worker(self) -> DeliveryWorker:
        worker: DeliveryWorker = _app(self.client).state.delivery_worker
        return worker

    def call(self, fn: Callable[..., Any], *args: Any) -> Any:
        assert self.client.portal is not None
        return self.client.portal.call(fn, *args)

    def deliver(self, event: Envelope) -> bool:
        """Hand an event to the consumer as Kafka would: serialized, decoded, handled."""
        consumer = EventConsumer(
            group_id="notifications",
            sessions=self.runtime.sessions,
            handlers=self.notifier.handlers(),
            on_commit=self.runtime.relay.notify,
        )
        handled: bool = self.call(consumer.handle, decode(event.topic, event.to_json()))
        return handled

    def deliver_due(self, channel: Channel | None = None) -> int:
        attempted: int = self.call(self.worker.deliver_due, channel)
        return attempted

    def timer_worker(self) -> TimerWorker:
        """A fresh timer worker on the fake clock (a restarted process has a fresh one too)."""
        return TimerWorker(
            self.runtime.sessions,
            self.notifier.timer_handlers(),
            on_commit=self.runtime.relay.notify,
            clock=self.clock,
        )

    def fire_timers(self) -> int:
        fired: int = self.call(self.timer_worker().fire_due)
        return fired

    def outbox(self, event_type: str | None = None) -> list[dict[str, Any]]:
        events = [
            json.loads(p)
            for (p,) in rows(self.db, "SELECT payload FROM outbox_messages ORDER BY seq")
        ]
        return [e for e in events if event_type is None or e["event_type"] == event_type]

    def notifications(self, where: str = "1=1") -> list[dict[str, Any]]:
        columns = (
            "notification_id, source_event_id, source_event_type, alert_id, escalation_level, "
            "recipient_id, channel, priority, status, attempts, next_attempt_at, last_error, "
            "title, body"
        )
        names = [c.strip() for c in columns.split(",")]
        found = rows(
            self.db,
            f"SELECT {columns} FROM notifications WHERE {where} "  # noqa: S608 - test helper
            "ORDER BY created_at, recipient_id, channel",
        )
        return [dict(zip(names, r, strict=True)) for r in found]

    def put_recipient(
        self,
        clinician_id: str,
        as_: tuple[str, str, list[str]] = ADMIN,
        **body: Any,
    ) -> httpx.Response:
        payload = {"role": "prescriber", "sites": ["site-a"], **body}
        response: httpx.Response = self.client.put(
            f"/recipients/{clinician_id}", json=payload, headers=token(*as_)
        )
        return response

    def put_levels(
        self, site_id: str, levels: list[dict[str, Any]], as_: tuple[str, str, list[str]] = ADMIN
    ) -> httpx.Response:
        response: httpx.Response = self.client.put(
            f"/sites/{site_id}/escalation", json={"levels": levels}, headers=token(*as_)
        )
        return response


@pytest.fixture
def h(
    client: TestClient, db: Path, clock: Clock, sms: FakeSmsProvider, smtp: FakeSmtpServer
) -> Harness:
    return Harness(client, db, clock, sms, smtp)


@pytest.fixture
def deliver(h: Harness) -> Callable[[Envelope], bool]:
    return h.deliver


@pytest.fixture
def outbox(h: Harness) -> Callable[[], list[dict[str, Any]]]:
    return h.outbox
