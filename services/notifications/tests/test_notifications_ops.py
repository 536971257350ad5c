"""Operational endpoints every service has (CONTRACT section 4)."""

from __future__ import annotations

from collections.abc import Callable

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
from kap_shared.testing_ops import (
    assert_healthz_ok,
    assert_not_ready_without_broker,
    asyncapi_document,
    event_types_on,
    metric_value,
    metrics_text,
    openapi_paths,
)


def test_healthz_200(client: TestClient) -> None:
    assert_healthz_ok(client)


def test_readyz_503_while_the_broker_is_unreachable(client: TestClient) -> None:
    assert_not_ready_without_broker(client)


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
    text = metrics_text(client)
    assert metric_value(text, "kap_outbox_backlog") == 2


def test_asyncapi_documents_published_and_consumed_topics(client: TestClient) -> None:
    addresses, channels = asyncapi_document(client)
    assert {NOTIFICATIONS_EVENTS, SCHEDULING_EVENTS, INTAKE_EVENTS, MONITORING_EVENTS} <= addresses
    assert MONITORING_VITALS not in addresses  # the high-volume vitals topic is not consumed
    assert channels >= event_types_on(NOTIFICATIONS_EVENTS)


def test_openapi_docs(client: TestClient) -> None:
    paths = openapi_paths(client)
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
