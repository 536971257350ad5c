"""Operational endpoints every service has (CONTRACT section 4)."""

from __future__ import annotations

from fastapi.testclient import TestClient

from kap_shared import testing_ops as ops
from kap_shared.events.topics import INTAKE_EVENTS
from kap_shared.testing_ops import API_ERRORS as API


class TestOperationalEndpoints(ops.OperationalEndpoints):
    """/healthz, /readyz, /docs, and every operation's error statuses in its OpenAPI."""

    # Each operation and the error statuses its OpenAPI documents, besides the
    # operational endpoints (kap_shared.testing_ops.OPERATIONAL_ENDPOINTS).
    api = {
        "POST /patients": API | {409},
        "GET /patients/{patient_id}": API | {404},
        "GET /patients/display-names": API,
        "POST /patients/{patient_id}/screenings": API | {404, 409},
        "POST /patients/{patient_id}/screenings/{screening_id}/review": API | {404, 409},
        "POST /patients/{patient_id}/consents": API | {404, 409},
        "GET /fhir/Patient/{patient_id}": API | {404},
        "GET /audit": API,
    }


def test_metrics_is_prometheus_text_with_the_outbox_backlog(
    client: TestClient, patient_id: str
) -> None:
    text = ops.metrics_text(client)
    # The referral's PatientReferred waits in the outbox: the broker is unreachable.
    assert ops.metric_value(text, "kap_outbox_backlog") == 1
    age = ops.metric_value(text, "kap_outbox_oldest_unsent_age_seconds")
    assert age is not None
    assert 0 <= age < 60
    assert 'kap_http_requests_total{method="POST",route="/patients",status="201"} 1.0' in (text)


def test_asyncapi_documents_the_intake_topic_and_its_events(client: TestClient) -> None:
    addresses, channels = ops.asyncapi_document(client)
    assert INTAKE_EVENTS in addresses
    assert channels >= ops.event_types_on(INTAKE_EVENTS)


def test_unknown_path_and_method_use_the_error_shape(client: TestClient) -> None:
    missing = client.get("/no-such-endpoint")
    assert missing.status_code == 404
    assert missing.json()["error"]["code"] == "not_found"
    wrong_method = client.delete("/patients")
    assert wrong_method.status_code == 405
    assert wrong_method.json()["error"]["code"] == "method_not_allowed"
