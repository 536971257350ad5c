"""Operational endpoints every service has (CONTRACT section 4)."""

from __future__ import annotations

import re
from typing import Any

from fastapi.testclient import TestClient

from kap_shared.events.topics import (
    INTAKE_EVENTS,
    MONITORING_EVENTS,
    MONITORING_VITALS,
    SCHEDULING_EVENTS,
)

PUBLISHES = {
    "DoseAdministered",
    "VitalsAlert",
    "VitalsAlertResolved",
    "ObservationDue",
    "DischargeCleared",
    "OutcomeRecorded",
    "SafetyConcernRaised",
    "VitalsRecorded",
}


def test_healthz_200(client: TestClient) -> None:
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def test_readyz_503_while_the_broker_is_unreachable(client: TestClient) -> None:
    response = client.get("/readyz")
    assert response.status_code == 503
    assert response.json() == {"ready": False, "checks": {"broker": False, "database": True}}


def test_metrics_is_prometheus_text_with_the_outbox_backlog(client: TestClient) -> None:
    response = client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    assert "# TYPE kap_outbox_backlog gauge" in response.text
    assert re.search(r"^kap_outbox_backlog 0\.0$", response.text, re.MULTILINE)
    assert re.search(r"^kap_outbox_oldest_unsent_age_seconds 0\.0$", response.text, re.MULTILINE)


def test_asyncapi_documents_published_and_consumed_topics(client: TestClient) -> None:
    response = client.get("/asyncapi")
    assert response.status_code == 200
    document: dict[str, Any] = response.json()
    addresses = {channel["address"] for channel in document["channels"].values()}
    assert {MONITORING_EVENTS, MONITORING_VITALS, INTAKE_EVENTS, SCHEDULING_EVENTS} <= addresses
    assert set(document["channels"]) >= PUBLISHES


def test_openapi_docs(client: TestClient) -> None:
    assert client.get("/docs").status_code == 200
    assert client.get("/openapi.json").status_code == 200
