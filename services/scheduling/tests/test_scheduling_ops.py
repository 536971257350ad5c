"""Operational endpoints every service has (CONTRACT section 4)."""

from __future__ import annotations

from fastapi.testclient import TestClient

from kap_shared.events.enums import Route
from kap_shared.events.topics import INTAKE_EVENTS, MONITORING_EVENTS, SCHEDULING_EVENTS
from kap_shared.testing_ops import (
    assert_healthz_ok,
    assert_not_ready_without_broker,
    asyncapi_document,
    event_types_on,
    metric_value,
    metrics_text,
    openapi_paths,
)

from .conftest import World


def test_healthz_200(client: TestClient) -> None:
    assert_healthz_ok(client)


def test_readyz_503_while_the_broker_is_unreachable(client: TestClient) -> None:
    assert_not_ready_without_broker(client)


def test_metrics_is_prometheus_text_with_the_outbox_backlog(
    client: TestClient, world: World
) -> None:
    world.screen(route=Route.SUBLINGUAL)
    text = metrics_text(client)
    # TreatmentPlanCreated + PhaseAdvanced wait in the outbox.
    assert metric_value(text, "kap_outbox_backlog") == 2


def test_asyncapi_documents_published_and_consumed_topics(client: TestClient) -> None:
    addresses, channels = asyncapi_document(client)
    assert {SCHEDULING_EVENTS, INTAKE_EVENTS} <= addresses
    assert channels >= event_types_on(SCHEDULING_EVENTS)


def test_openapi_docs(client: TestClient) -> None:
    paths = openapi_paths(client)
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
    addresses, _ = asyncapi_document(client)
    assert MONITORING_EVENTS in addresses
