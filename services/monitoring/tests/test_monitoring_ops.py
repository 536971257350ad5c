"""Operational endpoints every service has (CONTRACT section 4)."""

from __future__ import annotations

from fastapi.testclient import TestClient

from kap_shared import testing_ops as ops
from kap_shared.events.topics import (
    INTAKE_EVENTS,
    MONITORING_EVENTS,
    MONITORING_VITALS,
    SCHEDULING_EVENTS,
)
from kap_shared.testing_ops import API_ERRORS as API


class TestOperationalEndpoints(ops.OperationalEndpoints):
    """/healthz, /readyz, /docs, and every operation's error statuses in its OpenAPI."""

    # Each operation and the error statuses its OpenAPI documents, besides the
    # operational endpoints (kap_shared.testing_ops.OPERATIONAL_ENDPOINTS).
    api = {
        "GET /sessions/{session_id}": API | {404},
        "GET /sites/{site_id}/sessions": API,
        "POST /sessions/{session_id}/vitals": API | {404, 409},
        "POST /sessions/{session_id}/doses": API | {404, 409},
        "POST /sessions/{session_id}/predose-decision": API | {404, 409},
        "POST /sessions/{session_id}/alerts/{alert_id}/resolve": API | {404, 409},
        "POST /sessions/{session_id}/discharge": API | {404, 409},
        "POST /sessions/{session_id}/safety-concerns/{concern_id}/resolve": API | {404, 409},
        "POST /sessions/{session_id}/stability-assessment": API | {404, 409},
        # 409: an Idempotency-Key reused with another body.
        "POST /patients/{patient_id}/measures": API | {404, 409},
    }


def test_metrics_is_prometheus_text_with_the_outbox_backlog(client: TestClient) -> None:
    text = ops.metrics_text(client)
    assert ops.metric_value(text, "kap_outbox_backlog") == 0
    assert ops.metric_value(text, "kap_outbox_oldest_unsent_age_seconds") == 0


def test_asyncapi_documents_published_and_consumed_topics(client: TestClient) -> None:
    addresses, channels = ops.asyncapi_document(client)
    assert {MONITORING_EVENTS, MONITORING_VITALS, INTAKE_EVENTS, SCHEDULING_EVENTS} <= addresses
    assert channels >= ops.event_types_on(MONITORING_EVENTS, MONITORING_VITALS)
