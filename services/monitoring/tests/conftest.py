"""Fixtures for monitoring's unit tests: the app in-process on a throw-away
SQLite DB, and a way to feed it events through its own consumer path."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from kap_monitoring.bootstrap import build
from kap_monitoring.config import MonitoringSettings
from kap_monitoring.entrypoints.stream import HANDLERS
from kap_shared.events import Envelope, decode
from kap_shared.messaging.consumer import EventConsumer
from kap_shared.service.runtime import ServiceRuntime
from kap_shared.testing import service_client


@pytest.fixture
def client(tmp_path: Path) -> Iterator[TestClient]:
    with service_client(MonitoringSettings, build, tmp_path) as test_client:
        yield test_client


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "monitoring.db"


def _runtime(client: TestClient) -> ServiceRuntime:
    app = client.app
    assert isinstance(app, FastAPI)
    runtime: ServiceRuntime = app.state.runtime
    return runtime


@pytest.fixture
def deliver(client: TestClient) -> Callable[[Envelope], bool]:
    """Hand an event to monitoring's consumer as Kafka would: serialized, decoded
    against the contract, handled in the app's loop and database. Exceptions the
    handler raises propagate (the broker middleware turns them into dead letters)."""
    consumer = EventConsumer(
        group_id="monitoring", sessions=_runtime(client).sessions, handlers=HANDLERS
    )

    def run(event: Envelope) -> bool:
        decoded = decode(event.topic, event.to_json())
        assert client.portal is not None
        return client.portal.call(consumer.handle, decoded)

    return run
