"""Handles on a service app that `kap_shared.testing.service_client` runs in-process:
its runtime, its consumer and timer worker (driven in the app's own event loop), and
what it stored (outbox payloads, table row counts). Shared by every service's tests."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from fastapi import FastAPI
from fastapi.testclient import TestClient

from .events import Envelope, decode
from .events.enums import Phase
from .events.intake import Baseline
from .events.scheduling import SessionScheduledData
from .messaging.consumer import EventConsumer, EventHandler
from .messaging.timers import TimerHandler, TimerWorker
from .service.runtime import ServiceRuntime
from .testing import rows


def app_of(client: TestClient) -> FastAPI:
    app = client.app
    assert isinstance(app, FastAPI)
    return app


def runtime_of(client: TestClient) -> ServiceRuntime:
    runtime: ServiceRuntime = app_of(client).state.runtime
    return runtime


def delivery(
    client: TestClient,
    group_id: str,
    handlers: Mapping[type[Envelope], EventHandler],
    **consumer: Any,
) -> Callable[[Envelope], bool]:
    """Hand an event to the service's consumer as Kafka would: serialized, decoded
    against the contract, handled in the app's event loop and database. Exceptions the
    handler raises propagate (the broker middleware turns them into dead letters)."""
    event_consumer = EventConsumer(
        group_id=group_id, sessions=runtime_of(client).sessions, handlers=handlers, **consumer
    )

    def deliver(event: Envelope) -> bool:
        assert client.portal is not None
        handled: bool = client.portal.call(
            event_consumer.handle, decode(event.topic, event.to_json())
        )
        return handled

    return deliver


def timer_firing(
    client: TestClient, timers: Mapping[str, TimerHandler]
) -> Callable[[datetime], int]:
    """Fire the durable timers due at `now` with these handlers, as the service's worker
    would at that time; returns how many fired."""

    def fire(now: datetime) -> int:
        worker = TimerWorker(runtime_of(client).sessions, timers, clock=lambda: now)
        assert client.portal is not None
        fired: int = client.portal.call(worker.fire_due)
        return fired

    return fire


def outbox_payloads(db: Path, *event_types: str) -> list[dict[str, Any]]:
    """The outbox's event payloads in publishing order, optionally only of some types."""
    events = [
        json.loads(p) for (p,) in rows(db, "SELECT payload FROM outbox_messages ORDER BY seq")
    ]
    return [e for e in events if not event_types or e["event_type"] in event_types]


def table_counts(db: Path, tables: Iterable[str]) -> dict[str, int]:
    """Row counts of these tables (e.g. every table a refused request must not write)."""
    return {
        table: rows(db, f"SELECT COUNT(*) FROM {table}")[0][0]  # noqa: S608 - fixed names
        for table in tables
    }


def wait_for_due_timers(db: Path, timeout: float = 30.0) -> None:
    """Return once the app's timer worker has fired every timer already due.

    A test that back-dates a dose makes its notices (e.g. SPR-MON-1's overdue BP) due at
    once; the worker fires them on its next poll, whenever that is on a loaded machine,
    so a before/after row count is only stable after this."""
    deadline = time.monotonic() + timeout
    while True:
        now = datetime.now(UTC)
        due = [
            at
            for (text,) in rows(db, "SELECT due_at FROM scheduled_jobs WHERE status = 'pending'")
            if (at := datetime.fromisoformat(text)).replace(tzinfo=at.tzinfo or UTC) <= now
        ]
        if not due:
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"{len(due)} due timer(s) still pending after {timeout} s")
        time.sleep(0.05)


def envelope(producer: str, site_id: str, patient_id: str) -> dict[str, Any]:
    """The envelope fields of a test event from `producer` about a patient of a site,
    in the patient's episode `episode-<patient_id>`."""
    return {
        "producer": producer,
        "site_id": site_id,
        "patient_id": patient_id,
        "correlation_id": f"episode-{patient_id}",
    }


def screening_baseline(**overrides: Any) -> Baseline:
    """The baseline of a PatientScreened: an eligible patient's (PHQ-9 16, item 9 at 0,
    GAD-7 11, BP 124/78, heart rate 72) with `overrides`."""
    values: dict[str, Any] = {
        "phq9_total": 16,
        "phq9_item9": 0,
        "gad7_total": 11,
        "bp_systolic": 124,
        "bp_diastolic": 78,
        "heart_rate": 72,
    }
    return Baseline(**{**values, **overrides})


def session_booking(session_id: str, starts_at: datetime, **overrides: Any) -> SessionScheduledData:
    """The data of a SessionScheduled: dosing session 1 of plan-1, two hours from
    `starts_at` in room-1 with prescriber rx-ada and therapist th-ben, with `overrides`."""
    values: dict[str, Any] = {
        "plan_id": "plan-1",
        "phase": Phase.DOSING,
        "sequence": 1,
        "ends_at": starts_at + timedelta(hours=2),
        "room_id": "room-1",
        "prescriber_id": "rx-ada",
        "therapist_id": "th-ben",
    }
    return SessionScheduledData(
        session_id=session_id, starts_at=starts_at, **{**values, **overrides}
    )
