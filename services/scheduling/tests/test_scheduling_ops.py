"""Operational endpoints every service has (CONTRACT section 4)."""

from __future__ import annotations

from fastapi.testclient import TestClient

from kap_shared import testing_ops as ops
from kap_shared.events.enums import Route
from kap_shared.events.topics import INTAKE_EVENTS, MONITORING_EVENTS, SCHEDULING_EVENTS

from .conftest import World
from .test_scheduling_openapi import EXPECTED


class TestOperationalEndpoints(ops.OperationalEndpoints):
    """/healthz, /readyz, /docs and a path for every operation of the OpenAPI test."""

    api = EXPECTED


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
