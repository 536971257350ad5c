"""KAP-2 integration deadlines as durable timers: IntegrationOverdue when the deadline
passes without a completed integration session, exactly once, and never after the
integration was completed. Timers are fired as the service's worker would, at a
chosen time (a fresh worker per call, as after a restart)."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from kap_shared.events import decode
from kap_shared.events.enums import Route
from kap_shared.events.topics import SCHEDULING_EVENTS
from kap_shared.testing import rows

World = Any  # conftest.World
Outbox = Callable[[], list[dict[str, Any]]]
Fire = Callable[[datetime], int]


def overdue_events(outbox: Outbox) -> list[dict[str, Any]]:
    return [e for e in outbox() if e["event_type"] == "IntegrationOverdue"]


def first_dosing_done(world: World) -> tuple[dict[str, Any], datetime]:
    """A prepared IV patient's first dosing session, completed; its KAP-2 deadline."""
    world.prepared()
    dosing: dict[str, Any] = world.session("dosing", world.at(0, "09:00", week=1))
    return dosing, datetime.fromisoformat(dosing["completed_at"]) + timedelta(hours=72)


def completed_event(outbox: Outbox, session: dict[str, Any]) -> dict[str, Any]:
    """The SessionCompleted event of `session` in the outbox."""
    return next(
        e
        for e in outbox()
        if e["event_type"] == "SessionCompleted"
        and e["data"]["session_id"] == session["session_id"]
    )


def test_KAP_2_nothing_fires_a_second_before_the_deadline(
    world: World, fire_timers: Fire, outbox: Outbox
) -> None:
    _, due_by = first_dosing_done(world)

    assert fire_timers(due_by - timedelta(seconds=1)) == 0
    assert overdue_events(outbox) == []


def test_KAP_2_integration_overdue_when_the_deadline_passes(
    world: World, fire_timers: Fire, outbox: Outbox
) -> None:
    dosing, due_by = first_dosing_done(world)
    completed = completed_event(outbox, dosing)

    assert fire_timers(due_by) == 1

    [overdue] = overdue_events(outbox)
    assert overdue["data"] == {
        "dosing_session_id": dosing["session_id"],
        "due_by": due_by.isoformat().replace("+00:00", "Z"),
        "therapist_id": "th-ben",
        "rule_id": "KAP-2",
    }
    assert overdue["causation_id"] == completed["event_id"]
    assert overdue["correlation_id"] == "episode-pt-1"
    assert (overdue["patient_id"], overdue["site_id"]) == ("pt-1", "site-a")
    decode(SCHEDULING_EVENTS, overdue)
    world.clock.set(due_by + timedelta(minutes=1))
    plan = world.plan()
    assert [d["status"] for d in plan["integration_deadlines"]] == ["overdue"]
    assert plan["next_action"].startswith("Integration after dosing session 1 is overdue")


def test_KAP_2_an_overdue_deadline_fires_once_even_after_a_restart(
    world: World, fire_timers: Fire, outbox: Outbox, db: Path
) -> None:
    _, due_by = first_dosing_done(world)

    assert fire_timers(due_by + timedelta(hours=1)) == 1
    # A new worker (a restarted service) later on finds nothing left to fire.
    assert fire_timers(due_by + timedelta(days=2)) == 0
    assert len(overdue_events(outbox)) == 1
    assert rows(db, "SELECT status FROM scheduled_jobs") == [("fired",)]


def test_KAP_2_a_completed_integration_session_stops_the_timer(
    world: World, fire_timers: Fire, outbox: Outbox
) -> None:
    _, due_by = first_dosing_done(world)
    world.session("integration", world.at(2, "09:00", week=1))

    assert fire_timers(due_by + timedelta(hours=1)) == 0
    assert overdue_events(outbox) == []


def test_KAP_2_a_booked_but_not_completed_integration_does_not_stop_it(
    world: World, fire_timers: Fire, outbox: Outbox
) -> None:
    _, due_by = first_dosing_done(world)
    world.booked("integration", world.at(4, "09:00", week=1))
    assert fire_timers(due_by) == 1
    assert len(overdue_events(outbox)) == 1


def test_KAP_2_integration_completed_after_the_alert_is_met_late(
    world: World, fire_timers: Fire
) -> None:
    _, due_by = first_dosing_done(world)
    fire_timers(due_by)
    world.session("integration", world.at(4, "09:00", week=1))
    [deadline] = world.plan()["integration_deadlines"]
    assert deadline["status"] == "met_late"


def test_KAP_2_each_dosing_session_has_its_own_deadline(
    world: World, fire_timers: Fire, outbox: Outbox
) -> None:
    world.prepared()
    first = world.session("dosing", world.at(0, "09:00", week=1))
    world.session("integration", world.at(0, "14:00", week=1))
    second = world.session("dosing", world.at(2, "09:00", week=1))
    later = datetime.fromisoformat(second["completed_at"]) + timedelta(hours=73)

    assert fire_timers(later) == 1

    assert [e["data"]["dosing_session_id"] for e in overdue_events(outbox)] == [
        second["session_id"]
    ]
    statuses = {d["dosing_session_id"]: d["status"] for d in world.plan()["integration_deadlines"]}
    assert statuses == {first["session_id"]: "met", second["session_id"]: "overdue"}


def test_KAP_2_oral_route_allows_7_days(world: World, fire_timers: Fire) -> None:
    world.prepared(route=Route.ORAL)
    dosing = world.session("dosing", world.at(0, "09:00", week=1))
    completed_at = datetime.fromisoformat(dosing["completed_at"])
    [deadline] = world.plan()["integration_deadlines"]
    assert datetime.fromisoformat(deadline["due_by"]) == completed_at + timedelta(days=7)
    assert fire_timers(completed_at + timedelta(hours=72)) == 0


class TestPerSiteDeadline:
    @pytest.fixture
    def rules_file(self, tmp_path: Path) -> Path:
        path = tmp_path / "rules.json"
        path.write_text(json.dumps({"sites": {"site-a": {"integration_due_hours": 0.5}}}))
        return path

    def test_KAP_2_deadline_is_configurable_per_site(
        self, world: World, fire_timers: Fire, outbox: Outbox
    ) -> None:
        world.prepared()
        dosing = world.session("dosing", world.at(0, "09:00", week=1))
        completed_at = datetime.fromisoformat(dosing["completed_at"])
        assert fire_timers(completed_at + timedelta(minutes=29)) == 0
        assert fire_timers(completed_at + timedelta(minutes=30)) == 1
        assert len(overdue_events(outbox)) == 1


def test_KAP_2_dosing_session_completed_carries_its_integration_deadline(
    world: World, outbox: Outbox
) -> None:
    """Issue 11: notifications tells the therapist the deadline from the event itself."""
    dosing, due_by = first_dosing_done(world)
    completed = completed_event(outbox, dosing)
    assert datetime.fromisoformat(completed["data"]["integration_due_by"]) == due_by
    assert completed["data"]["dosing_sessions_completed"] == 1
    assert completed["data"]["planned_dosing_sessions"] >= 1
    assert completed["data"]["open_dosing_holds"] == 0
