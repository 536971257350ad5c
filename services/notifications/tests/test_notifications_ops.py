"""Operational endpoints every service has (CONTRACT section 4)."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from fastapi.testclient import TestClient

from kap_shared.events import Envelope, TreatmentPlanCreated
from kap_shared.events.enums import Route
from kap_shared.events.scheduling import TreatmentPlanCreatedData
from kap_shared.events.topics import (
    INTAKE_EVENTS,
    MONITORING_EVENTS,
    MONITORING_VITALS,
    NOTIFICATIONS_EVENTS,
    SCHEDULING_EVENTS,
)

PUBLISHES = {"NotificationSent", "NotificationFailed", "AlertAcknowledged", "AlertEscalated"}


def test_healthz_200(client: TestClient) -> None:
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def test_readyz_503_while_the_broker_is_unreachable(client: TestClient) -> None:
    response = client.get("/readyz")
    assert response.status_code == 503
    assert response.json() == {"ready": False, "checks": {"broker": False, "database": True}}


def test_metrics_is_prometheus_text_with_the_outbox_backlog(
    client: TestClient, deliver: Callable[[Envelope], bool]
) -> None:
    deliver(
        TreatmentPlanCreated(
            producer="scheduling",
            site_id="site-a",
            patient_id="pt-1",
            correlation_id="ep-1",
            data=TreatmentPlanCreatedData(
                plan_id="plan-1",
                route=Route.ORAL,
                protocol="kap_sublingual",
                prescriber_id="rx-1",
                therapist_id="th-1",
                planned_dosing_sessions=6,
            ),
        )
    )
    response = client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    assert "# TYPE kap_outbox_backlog gauge" in response.text
    assert re.search(r"^kap_outbox_backlog 2\.0$", response.text, re.MULTILINE)


def test_asyncapi_documents_published_and_consumed_topics(client: TestClient) -> None:
    response = client.get("/asyncapi")
    assert response.status_code == 200
    document: dict[str, Any] = response.json()
    addresses = {channel["address"] for channel in document["channels"].values()}
    assert {NOTIFICATIONS_EVENTS, SCHEDULING_EVENTS, INTAKE_EVENTS, MONITORING_EVENTS} <= addresses
    assert MONITORING_VITALS not in addresses  # the high-volume vitals topic is not consumed
    assert set(document["channels"]) >= PUBLISHES


def test_openapi_docs(client: TestClient) -> None:
    assert client.get("/docs").status_code == 200
    paths = client.get("/openapi.json").json()["paths"]
    assert {
        "/inbox",
        "/inbox/stream",
        "/recipients/{clinician_id}",
        "/sites/{site_id}/escalation",
        "/notifications/{notification_id}/ack",
    } <= set(paths)
    assert "text/event-stream" in paths["/inbox/stream"]["get"]["responses"]["200"]["content"]


def test_metrics_include_delivery_and_stream_gauges(client: TestClient) -> None:
    text = client.get("/metrics").text
    assert "kap_notifications_stream_clients 0.0" in text
    assert "# TYPE kap_notifications_delivery_attempts_total counter" in text
