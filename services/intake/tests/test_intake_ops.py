"""Operational endpoints every service has (CONTRACT section 4)."""

from __future__ import annotations

import re
from typing import Any

from fastapi.testclient import TestClient

from kap_shared.events.topics import INTAKE_EVENTS

PUBLISHES = {"PatientReferred", "PatientScreened", "ConsentRecorded"}


def test_healthz_200(client: TestClient) -> None:
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def test_readyz_503_while_the_broker_is_unreachable(client: TestClient) -> None:
    response = client.get("/readyz")
    assert response.status_code == 503
    assert response.json() == {"ready": False, "checks": {"broker": False, "database": True}}


def test_metrics_is_prometheus_text_with_the_outbox_backlog(
    client: TestClient, patient_id: str
) -> None:
    response = client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    assert "# TYPE kap_outbox_backlog gauge" in response.text
    # The referral's PatientReferred waits in the outbox: the broker is unreachable.
    assert re.search(r"^kap_outbox_backlog 1\.0$", response.text, re.MULTILINE)
    age = re.search(r"^kap_outbox_oldest_unsent_age_seconds (\S+)$", response.text, re.MULTILINE)
    assert age is not None
    assert 0 <= float(age.group(1)) < 60
    assert 'kap_http_requests_total{method="POST",route="/patients",status="201"} 1.0' in (
        response.text
    )


def test_asyncapi_documents_the_intake_topic_and_its_events(client: TestClient) -> None:
    response = client.get("/asyncapi")
    assert response.status_code == 200
    document: dict[str, Any] = response.json()
    assert document["asyncapi"].startswith("3.")
    addresses = {channel["address"] for channel in document["channels"].values()}
    assert INTAKE_EVENTS in addresses
    assert set(document["channels"]) >= PUBLISHES


def test_openapi_docs(client: TestClient) -> None:
    assert client.get("/docs").status_code == 200
    paths = client.get("/openapi.json").json()["paths"]
    assert {
        "/patients",
        "/patients/{patient_id}",
        "/patients/{patient_id}/screenings",
        "/patients/{patient_id}/screenings/{screening_id}/review",
        "/patients/{patient_id}/consents",
    } <= set(paths)


def test_unknown_path_and_method_use_the_error_shape(client: TestClient) -> None:
    missing = client.get("/no-such-endpoint")
    assert missing.status_code == 404
    assert missing.json()["error"]["code"] == "not_found"
    wrong_method = client.delete("/patients")
    assert wrong_method.status_code == 405
    assert wrong_method.json()["error"]["code"] == "method_not_allowed"
