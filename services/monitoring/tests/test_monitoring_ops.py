"""Operational endpoints every service has (CONTRACT section 4)."""

from __future__ import annotations

from fastapi.testclient import TestClient

from kap_shared.events.topics import (
    INTAKE_EVENTS,
    MONITORING_EVENTS,
    MONITORING_VITALS,
    SCHEDULING_EVENTS,
)
from kap_shared.testing_ops import (
    assert_healthz_ok,
    assert_not_ready_without_broker,
    asyncapi_document,
    event_types_on,
    metric_value,
    metrics_text,
)


def test_healthz_200(client: TestClient) -> None:
    assert_healthz_ok(client)


def test_readyz_503_while_the_broker_is_unreachable(client: TestClient) -> None:
    assert_not_ready_without_broker(client)


def test_metrics_is_prometheus_text_with_the_outbox_backlog(client: TestClient) -> None:
    text = metrics_text(client)
    assert metric_value(text, "kap_outbox_backlog") == 0
    assert metric_value(text, "kap_outbox_oldest_unsent_age_seconds") == 0


def test_asyncapi_documents_published_and_consumed_topics(client: TestClient) -> None:
    addresses, channels = asyncapi_document(client)
    assert {MONITORING_EVENTS, MONITORING_VITALS, INTAKE_EVENTS, SCHEDULING_EVENTS} <= addresses
    assert channels >= event_types_on(MONITORING_EVENTS, MONITORING_VITALS)


def test_openapi_docs(client: TestClient) -> None:
    assert client.get("/docs").status_code == 200
    assert client.get("/openapi.json").status_code == 200
