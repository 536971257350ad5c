"""Operational endpoints every service has (CONTRACT section 4)."""

from __future__ import annotations

from fastapi.testclient import TestClient

from kap_shared import testing_ops as ops
from kap_shared.events.enums import Route
from kap_shared.events.topics import INTAKE_EVENTS, MONITORING_EVENTS, SCHEDULING_EVENTS
from kap_shared.testing_ops import API_ERRORS as API

from .conftest import World


class TestOperationalEndpoints(ops.OperationalEndpoints):
    """/healthz, /readyz, /docs, and every operation's error statuses in its OpenAPI."""

    # Each operation and the error statuses its OpenAPI documents, besides the
    # operational endpoints (kap_shared.testing_ops.OPERATIONAL_ENDPOINTS).
    api = {
        "POST /sites": API | {409},
        "PATCH /sites/{site_id}": API | {404},
        "POST /sites/{site_id}/rooms": API | {404, 409},
        "POST /clinicians": API | {409},
        "GET /patients/{patient_id}/plan": API | {404},
        "POST /patients/{patient_id}/holds/{hold_id}/clear": API | {404, 409},
        "POST /sessions": API | {409},
        "GET /sessions/{session_id}": API | {404},
        "GET /sites/{site_id}/sessions": API,
        "POST /sessions/{session_id}/reschedule": API | {404, 409},
        "POST /sessions/{session_id}/cancel": API | {404, 409},
        "POST /sessions/{session_id}/check-in": API | {404, 409},
        "POST /sessions/{session_id}/complete": API | {404, 409},
    }


def test_metrics_is_prometheus_text_with_the_outbox_backlog(
    client: TestClient, world: World
) -> None:
    world.screen(route=Route.SUBLINGUAL)
    text = ops.metrics_text(client)
    # TreatmentPlanCreated + PhaseAdvanced wait in the outbox.
    assert ops.metric_value(text, "kap_outbox_backlog") == 2


def test_asyncapi_documents_published_and_consumed_topics(client: TestClient) -> None:
    addresses, channels = ops.asyncapi_document(client)
    assert {SCHEDULING_EVENTS, INTAKE_EVENTS} <= addresses
    assert channels >= ops.event_types_on(SCHEDULING_EVENTS)


def test_asyncapi_documents_the_monitoring_events_scheduling_consumes(client: TestClient) -> None:
    addresses, _ = ops.asyncapi_document(client)
    assert MONITORING_EVENTS in addresses
