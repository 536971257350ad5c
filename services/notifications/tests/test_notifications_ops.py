"""Operational endpoints every service has (CONTRACT section 4)."""

from __future__ import annotations

from collections.abc import Callable

from fastapi.testclient import TestClient

from kap_shared import testing_ops as ops
from kap_shared.events import Envelope
from kap_shared.events.topics import (
    INTAKE_EVENTS,
    MONITORING_EVENTS,
    MONITORING_VITALS,
    NOTIFICATIONS_EVENTS,
    SCHEDULING_EVENTS,
)
from kap_shared.testing_ops import API_ERRORS as API

from .factories import plan_created


class TestOperationalEndpoints(ops.OperationalEndpoints):
    """/healthz, /readyz, /docs, and every operation's error statuses in its OpenAPI."""

    # Each operation and the error statuses its OpenAPI documents, besides the
    # operational endpoints (kap_shared.testing_ops.OPERATIONAL_ENDPOINTS).
    api = {
        "PUT /recipients/{clinician_id}": API,
        "GET /recipients/{clinician_id}": API | {404},
        "PUT /sites/{site_id}/escalation": API,
        "GET /sites/{site_id}/escalation": API,
        "GET /inbox": API,
        "GET /inbox/stream": API,
        # 409: the same Idempotency-Key with another request (`idempotency_key_reused`)
        "POST /notifications/{notification_id}/ack": API | {404, 409},
        "GET /patients/{patient_id}/measurement-schedule": API | {404},
        "GET /alerts": API,
    }


def test_metrics_is_prometheus_text_with_the_outbox_backlog(
    client: TestClient, deliver: Callable[[Envelope], bool]
) -> None:
    deliver(plan_created())
    text = ops.metrics_text(client)
    assert ops.metric_value(text, "kap_outbox_backlog") == 2


def test_asyncapi_documents_published_and_consumed_topics(client: TestClient) -> None:
    addresses, channels = ops.asyncapi_document(client)
    assert {NOTIFICATIONS_EVENTS, SCHEDULING_EVENTS, INTAKE_EVENTS, MONITORING_EVENTS} <= addresses
    assert MONITORING_VITALS not in addresses  # the high-volume vitals topic is not consumed
    assert channels >= ops.event_types_on(NOTIFICATIONS_EVENTS)


def test_the_inbox_stream_is_documented_as_server_sent_events(client: TestClient) -> None:
    paths = ops.openapi_paths(client)
    assert "text/event-stream" in paths["/inbox/stream"]["get"]["responses"]["200"]["content"]


def test_metrics_include_delivery_and_stream_gauges(client: TestClient) -> None:
    text = client.get("/metrics").text
    assert "kap_notifications_stream_clients 0.0" in text
    assert "# TYPE kap_notifications_delivery_attempts_total counter" in text
