"""Fixtures for notifications' unit tests: the app in-process on a throw-away
SQLite DB, and a way to feed it events through its own consumer path."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from kap_notifications.bootstrap import build
from kap_notifications.config import NotificationsSettings
from kap_notifications.entrypoints.stream import HANDLERS
from kap_shared.events import Envelope, decode
from kap_shared.messaging.consumer import EventConsumer
from kap_shared.service.runtime import ServiceRuntime
from kap_shared.testing import rows, service_client


@pytest.fixture
def client(tmp_path: Path) -> Iterator[TestClient]:
    with service_client(NotificationsSettings, build, tmp_path) as test_client:
        yield test_client


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "notifications.db"


def _runtime(client: TestClient) -> ServiceRuntime:
    app = client.app
    assert isinstance(app, FastAPI)
    runtime: ServiceRuntime = app.state.runtime
    return runtime


@pytest.fixture
def deliver(client: TestClient) -> Callable[[Envelope], bool]:
    """Hand an event to the notifications consumer as Kafka would: serialized,
    decoded against the contract, handled in the app's loop and database."""
    consumer = EventConsumer(
        group_id="notifications", sessions=_runtime(client).sessions, handlers=HANDLERS
    )

    def run(event: Envelope) -> bool:
        decoded = decode(event.topic, event.to_json())
        assert client.portal is not None
        return client.portal.call(consumer.handle, decoded)

    return run


@pytest.fixture
def outbox(db: Path) -> Callable[[], list[dict[str, Any]]]:
    def read() -> list[dict[str, Any]]:
        return [
            json.loads(p) for (p,) in rows(db, "SELECT payload FROM outbox_messages ORDER BY seq")
        ]

    return read
