"""Operational endpoints every service has (CONTRACT section 4)."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from functools import partial
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from kap_scheduling.bootstrap import build
from kap_scheduling.config import SchedulingSettings
from kap_shared import testing_ops as ops
from kap_shared.events.enums import Route
from kap_shared.events.topics import INTAKE_EVENTS, MONITORING_EVENTS, SCHEDULING_EVENTS
from kap_shared.testing import service_client
from kap_shared.testing_ops import API_ERRORS as API

from .conftest import FakeClock, World


@pytest.fixture
def client(tmp_path: Path, clock: FakeClock) -> Iterator[TestClient]:
    """conftest's, with the service's own timer worker polling once an hour: the timer
    metric's test makes a deadline due and scrapes it before that worker could fire it."""
    with service_client(
        SchedulingSettings, partial(build, clock=clock), tmp_path, timer_poll_seconds=3600
    ) as test_client:
        yield test_client


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


def test_metrics_count_the_durable_timers_whose_time_has_come(
    client: TestClient, world: World, db: Path, fire_timers: Callable[[datetime], int]
) -> None:
    """`kap_timers_due`: what end-to-end tests wait on (0) instead of sleeping through the
    timer worker's polls, and what an operator sees rise when deadlines go unanswered."""
    world.prepared()
    world.session("dosing", world.at(0, "09:00", week=1))  # sets its KAP-2 deadline
    assert ops.metric_value(ops.metrics_text(client), "kap_timers_due") == 0  # weeks ahead

    with sqlite3.connect(db) as connection:  # the deadline passes (real time: the worker's)
        connection.execute("UPDATE scheduled_jobs SET due_at = '2000-01-01 00:00:00.000000'")
    assert ops.metric_value(ops.metrics_text(client), "kap_timers_due") == 1

    assert fire_timers(datetime.now(UTC)) == 1  # IntegrationOverdue
    assert ops.metric_value(ops.metrics_text(client), "kap_timers_due") == 0


def test_asyncapi_documents_published_and_consumed_topics(client: TestClient) -> None:
    addresses, channels = ops.asyncapi_document(client)
    assert {SCHEDULING_EVENTS, INTAKE_EVENTS} <= addresses
    assert channels >= ops.event_types_on(SCHEDULING_EVENTS)


def test_asyncapi_documents_the_monitoring_events_scheduling_consumes(client: TestClient) -> None:
    addresses, _ = ops.asyncapi_document(client)
    assert MONITORING_EVENTS in addresses
