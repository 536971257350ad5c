"""Operational endpoints every service has (CONTRACT section 4)."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from fastapi.testclient import TestClient

from kap_shared.events import Envelope, PatientScreened
from kap_shared.events.enums import Route, ScreeningOutcome
from kap_shared.events.intake import Baseline, PatientScreenedData
from kap_shared.events.topics import INTAKE_EVENTS, MONITORING_EVENTS, SCHEDULING_EVENTS

PUBLISHES = {
    "TreatmentPlanCreated",
    "SessionScheduled",
    "SessionRescheduled",
    "SessionCancelled",
    "SessionCheckedIn",
    "SessionCompleted",
    "PhaseAdvanced",
    "IntegrationOverdue",
}


def test_healthz_200(client: TestClient) -> None:
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def test_readyz_503_while_the_broker_is_unreachable(client: TestClient) -> None:
    response = client.get("/readyz")
    assert response.status_code == 503
    assert response.json() == {"ready": False, "checks": {"broker": False, "database": True}}


def test_metrics_is_prometheus_text_with_the_outbox_backlog(
    client: TestClient, staffed: None, deliver: Callable[[Envelope], bool]
) -> None:
    deliver(
        PatientScreened(
            producer="intake",
            site_id="site-a",
            patient_id="pt-1",
            correlation_id="ep-1",
            data=PatientScreenedData(
                screening_id="scr-1",
                outcome=ScreeningOutcome.ELIGIBLE,
                route=Route.SUBLINGUAL,
                indications=["ptsd"],
                baseline=Baseline(
                    phq9_total=9,
                    phq9_item9=0,
                    gad7_total=8,
                    bp_systolic=118,
                    bp_diastolic=76,
                    heart_rate=64,
                ),
            ),
        )
    )
    response = client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    assert "# TYPE kap_outbox_backlog gauge" in response.text
    # TreatmentPlanCreated + PhaseAdvanced wait in the outbox.
    assert re.search(r"^kap_outbox_backlog 2\.0$", response.text, re.MULTILINE)


def test_asyncapi_documents_published_and_consumed_topics(client: TestClient) -> None:
    response = client.get("/asyncapi")
    assert response.status_code == 200
    document: dict[str, Any] = response.json()
    addresses = {channel["address"] for channel in document["channels"].values()}
    assert {SCHEDULING_EVENTS, INTAKE_EVENTS} <= addresses
    assert set(document["channels"]) >= PUBLISHES


def test_openapi_docs(client: TestClient) -> None:
    assert client.get("/docs").status_code == 200
    paths = client.get("/openapi.json").json()["paths"]
    assert {
        "/sites",
        "/sites/{site_id}",
        "/sites/{site_id}/rooms",
        "/clinicians",
        "/patients/{patient_id}/plan",
        "/patients/{patient_id}/holds/{hold_id}/clear",
        "/sessions",
        "/sessions/{session_id}",
        "/sessions/{session_id}/reschedule",
        "/sessions/{session_id}/cancel",
        "/sessions/{session_id}/check-in",
        "/sessions/{session_id}/complete",
    } <= set(paths)


def test_asyncapi_documents_the_monitoring_events_scheduling_consumes(client: TestClient) -> None:
    document: dict[str, Any] = client.get("/asyncapi").json()
    addresses = {channel["address"] for channel in document["channels"].values()}
    assert MONITORING_EVENTS in addresses
