"""Fixtures for scheduling's unit tests: the app in-process on a throw-away SQLite
DB, and a way to feed it events through its own consumer path."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from kap_scheduling.bootstrap import build
from kap_scheduling.config import SchedulingSettings
from kap_scheduling.entrypoints.stream import HANDLERS
from kap_shared.events import Envelope, decode
from kap_shared.messaging.consumer import EventConsumer
from kap_shared.service.runtime import ServiceRuntime
from kap_shared.testing import rows, service_client, token


@pytest.fixture
def client(tmp_path: Path) -> Iterator[TestClient]:
    with service_client(SchedulingSettings, build, tmp_path) as test_client:
        yield test_client


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "scheduling.db"


@pytest.fixture
def admin() -> dict[str, str]:
    return token("adm-1", "admin", ["*"])


def _runtime(client: TestClient) -> ServiceRuntime:
    app = client.app
    assert isinstance(app, FastAPI)
    runtime: ServiceRuntime = app.state.runtime
    return runtime


@pytest.fixture
def deliver(client: TestClient) -> Callable[[Envelope], bool]:
    """Hand an event to scheduling's consumer as Kafka would: serialized, decoded
    against the contract, then handled in the app's event loop and database."""
    consumer = EventConsumer(
        group_id="scheduling", sessions=_runtime(client).sessions, handlers=HANDLERS
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


@pytest.fixture
def add_clinician(client: TestClient, admin: dict[str, str]) -> Callable[..., Any]:
    def add(clinician_id: str, role: str, sites: list[str]) -> Any:
        response = client.post(
            "/clinicians",
            json={"clinician_id": clinician_id, "role": role, "sites": sites},
            headers=admin,
        )
        assert response.status_code == 201, response.text
        return response.json()

    return add


@pytest.fixture
def sites(client: TestClient, admin: dict[str, str]) -> list[str]:
    """Two sites in the directory, no clinicians yet."""
    for site_id, name in (("site-a", "North clinic"), ("site-b", "South clinic")):
        response = client.post("/sites", json={"site_id": site_id, "name": name}, headers=admin)
        assert response.status_code == 201, response.text
    return ["site-a", "site-b"]


@pytest.fixture
def staffed(sites: list[str], add_clinician: Callable[..., Any]) -> None:
    """Site A has a prescriber and a therapist; site B has nobody."""
    add_clinician("rx-ada", "prescriber", ["site-a"])
    add_clinician("th-ben", "therapist", ["site-a"])
