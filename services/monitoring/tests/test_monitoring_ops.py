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

from .test_monitoring_openapi import EXPECTED


class TestOperationalEndpoints(ops.OperationalEndpoints):
    """/healthz, /readyz, /docs and a path for every operation of the OpenAPI test."""

    api = EXPECTED


def test_metrics_is_prometheus_text_with_the_outbox_backlog(client: TestClient) -> None:
    text = ops.metrics_text(client)
    assert ops.metric_value(text, "kap_outbox_backlog") == 0
    assert ops.metric_value(text, "kap_outbox_oldest_unsent_age_seconds") == 0


def test_asyncapi_documents_published_and_consumed_topics(client: TestClient) -> None:
    addresses, channels = ops.asyncapi_document(client)
    assert {MONITORING_EVENTS, MONITORING_VITALS, INTAKE_EVENTS, SCHEDULING_EVENTS} <= addresses
    assert channels >= ops.event_types_on(MONITORING_EVENTS, MONITORING_VITALS)
