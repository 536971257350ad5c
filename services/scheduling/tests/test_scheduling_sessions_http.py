"""Sessions over HTTP: POST /sessions and the lifecycle (reschedule, cancel, check-in,
complete), what is stored and what goes into the outbox (CONTRACT section 3)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from kap_shared.events import decode
from kap_shared.events.enums import Route
from kap_shared.events.topics import SCHEDULING_EVENTS
from kap_shared.testing import rows, token

World = Any  # conftest.World
Outbox = Callable[[], list[dict[str, Any]]]
Counts = Callable[[], dict[str, int]]

NURSE = token("rn-dee", "nurse", ["site-a"])

Session = dict[str, Any]


@pytest.fixture
def session(world: World) -> Session:
    """pt-1 ready for preparation, with a preparation session booked on the first day at
    09:00."""
    world.ready()
    booked: Session = world.booked("preparation", world.at(0, "09:00"))
    return booked


def events_since(outbox: Outbox, before: int) -> list[dict[str, Any]]:
    return outbox()[before:]


def types(events: list[dict[str, Any]]) -> list[str]:
    return [e["event_type"] for e in events]


def the_one_event(outbox: Outbox, before: int, event_type: str) -> dict[str, Any]:
    """The data of the only event written since `before`, which is an `event_type`."""
    [event] = events_since(outbox, before)
    assert event["event_type"] == event_type
    data: dict[str, Any] = event["data"]
    return data


# -- booking ------------------------------------------------------------------------------


def test_book_preparation_session_201_stores_it_and_emits_session_scheduled(
    world: World, outbox: Outbox, db: Path
) -> None:
    world.ready()
    before = len(outbox())
    starts_at = world.at(0, "09:00")

    response = world.book("preparation", starts_at)

    assert response.status_code == 201, response.text
    session = response.json()
    assert session["phase"] == "preparation"
    assert session["sequence"] == 1
    assert session["label"] == "Preparation session 1 of 2"
    assert session["status"] == "scheduled"
    assert session["booked_by"] == "co-amy"
    assert datetime.fromisoformat(session["starts_at"]) == starts_at
    assert rows(db, "SELECT session_id, phase, sequence, status FROM sessions") == [
        (session["session_id"], "preparation", 1, "scheduled")
    ]
    [scheduled] = events_since(outbox, before)
    plan_id = world.plan()["plan_id"]
    assert scheduled["event_type"] == "SessionScheduled"
    assert scheduled["data"] == {
        "session_id": session["session_id"],
        "plan_id": plan_id,
        "phase": "preparation",
        "sequence": 1,
        "starts_at": starts_at.isoformat().replace("+00:00", "Z"),
        "ends_at": (starts_at + timedelta(hours=1)).isoformat().replace("+00:00", "Z"),
        "room_id": "room-a1",
        "prescriber_id": None,
        "therapist_id": "th-ben",
        "nurse_id": None,
    }
    assert (scheduled["producer"], scheduled["patient_id"], scheduled["site_id"]) == (
        "scheduling",
        "pt-1",
        "site-a",
    )
    assert scheduled["correlation_id"] == "episode-pt-1"  # the plan's care episode
    assert scheduled["causation_id"] is None  # caused by a request, not an event
    assert decode(SCHEDULING_EVENTS, scheduled).event_type == "SessionScheduled"


def test_sequence_counts_sessions_of_the_phase_and_refills_a_cancelled_number(
    world: World,
) -> None:
    world.ready()
    first = world.booked("preparation", world.at(0, "09:00"))
    second = world.booked("preparation", world.at(1, "09:00"))
    third = world.booked("preparation", world.at(2, "09:00"))
    assert [first["sequence"], second["sequence"], third["sequence"]] == [1, 2, 3]

    assert world.cancel(second["session_id"]).status_code == 200
    again = world.booked("preparation", world.at(3, "09:00"))

    assert again["sequence"] == 2  # "preparation session 2" is rebooked, not a 4th


def test_times_with_an_offset_are_stored_and_published_in_utc(world: World, outbox: Outbox) -> None:
    world.ready()
    starts_at = world.at(0, "09:00")
    local = starts_at.astimezone(ZoneInfo("America/New_York"))
    assert local.utcoffset() != timedelta(0)
    session = world.booked(
        "preparation",
        starts_at,
        starts_at=local.isoformat(),
        ends_at=(local + timedelta(hours=1)).isoformat(),
    )
    utc = starts_at.astimezone(UTC).isoformat().replace("+00:00", "Z")
    assert session["starts_at"] == utc
    assert outbox()[-1]["data"]["starts_at"] == utc


def test_a_full_iv_course_emits_the_expected_sequence_of_events(
    world: World, outbox: Outbox
) -> None:
    world.prepared()
    plan = world.plan()
    assert plan["progress"]["preparation_completed"] == 2
    for n in range(6):
        day, week = (0, 2, 4)[n % 3], n // 3 + 1
        world.session("dosing", world.at(day, "09:00", week=week))
        world.session("integration", world.at(day, "14:00", week=week))

    events = [e for e in outbox() if e["patient_id"] == "pt-1"]
    expected = ["TreatmentPlanCreated", "PhaseAdvanced"]
    expected += ["SessionScheduled", "SessionCheckedIn", "SessionCompleted"] * 2
    for n in range(6):
        expected += ["SessionScheduled", "SessionCheckedIn"]
        expected += ["PhaseAdvanced"] if n == 0 else []
        expected += ["SessionCompleted"]
        expected += ["PhaseAdvanced"] if n == 5 else []
        expected += ["SessionScheduled", "SessionCheckedIn", "SessionCompleted"]
    assert types(events) == expected
    phases = [
        (e["data"]["from_phase"], e["data"]["to_phase"])
        for e in events
        if e["event_type"] == "PhaseAdvanced"
    ]
    assert phases == [(None, "preparation"), ("preparation", "dosing"), ("dosing", "integration")]
    dosing = [
        e
        for e in events
        if e["event_type"] == "SessionScheduled" and e["data"]["phase"] == "dosing"
    ]
    assert [e["data"]["sequence"] for e in dosing] == [1, 2, 3, 4, 5, 6]
    assert all(e["data"]["prescriber_id"] == "rx-ada" for e in dosing)
    plan = world.plan()
    assert (plan["phase"], plan["status"]) == ("integration", "active")
    assert plan["progress"]["dosing_completed"] == 6
    assert [d["status"] for d in plan["integration_deadlines"]] == ["met"] * 6
    assert plan["next_action"].startswith("Dosing course complete (6 of 6 dosing sessions)")
    for event in events:
        assert event["correlation_id"] == "episode-pt-1"
        decode(SCHEDULING_EVENTS, event)


def test_phase_advanced_to_dosing_is_caused_by_the_first_dosing_check_in(
    world: World, outbox: Outbox
) -> None:
    world.prepared()
    session = world.booked("dosing", world.at(0, "09:00", week=1))
    world.clock.set(world.at(0, "08:50", week=1))
    before = len(outbox())

    response = world.check_in(session["session_id"], world.attest())

    assert response.status_code == 200, response.text
    checked_in, advanced = events_since(outbox, before)
    assert checked_in["event_type"] == "SessionCheckedIn"
    assert checked_in["data"] == {
        "session_id": session["session_id"],
        "phase": "dosing",
        "checked_in_at": world.clock().isoformat().replace("+00:00", "Z"),
    }
    assert advanced["event_type"] == "PhaseAdvanced"
    assert advanced["data"]["from_phase"] == "preparation"
    assert advanced["data"]["to_phase"] == "dosing"
    assert advanced["causation_id"] == checked_in["event_id"]
    assert world.plan()["phase"] == "dosing"


def test_esketamine_course_counts_twelve_dosing_sessions(world: World, outbox: Outbox) -> None:
    world.prepared(route=Route.INTRANASAL_ESKETAMINE)
    schedule = [(w, d) for w in range(1, 5) for d in (0, 3)] + [(w, 0) for w in range(5, 9)]
    for week, day in schedule:
        world.session("dosing", world.at(day, "09:00", week=week))
        world.session("integration", world.at(day + 1, "09:00", week=week))
    plan = world.plan()
    assert plan["protocol"] == "esketamine_trd"
    assert plan["progress"]["dosing_completed"] == 12
    assert plan["phase"] == "integration"
    assert types(outbox())[-4] == "PhaseAdvanced"


# -- reschedule -------------------------------------------------------------------------------


def test_reschedule_moves_the_session_and_emits_previous_starts_at(
    world: World, session: Session, outbox: Outbox, db: Path
) -> None:
    before = len(outbox())
    new_start = world.at(2, "11:00")

    response = world.reschedule(session["session_id"], new_start)

    assert response.status_code == 200, response.text
    assert datetime.fromisoformat(response.json()["starts_at"]) == new_start
    assert response.json()["sequence"] == 1
    assert the_one_event(outbox, before, "SessionRescheduled") == {
        "session_id": session["session_id"],
        "phase": "preparation",
        "starts_at": new_start.isoformat().replace("+00:00", "Z"),
        "ends_at": (new_start + timedelta(hours=1)).isoformat().replace("+00:00", "Z"),
        "previous_starts_at": world.at(0, "09:00").isoformat().replace("+00:00", "Z"),
    }


def test_reschedule_does_not_conflict_with_itself(world: World, session: Session) -> None:
    start = world.at(0, "09:30")
    response = world.reschedule(
        session["session_id"], start, as_=token("th-ben", "therapist", ["site-a"])
    )
    assert response.status_code == 200, response.text


def test_reschedule_rechecks_every_rule(world: World, outbox: Outbox, db: Path) -> None:
    world.ready()
    world.ready("pt-2")  # th-cy is pt-2's therapist
    mine = world.booked("preparation", world.at(0, "09:00"))
    world.booked("preparation", world.at(1, "10:00"), patient_id="pt-2", therapist_id="th-cy")
    before = len(outbox())

    response = world.reschedule(mine["session_id"], world.at(1, "09:30"), world.at(1, "10:30"))

    assert response.status_code == 409
    assert response.json()["error"]["code"] == "SCH-CONFLICT-ROOM"
    assert len(outbox()) == before
    stored = world.client.get(f"/sessions/{mine['session_id']}", headers=NURSE).json()
    assert datetime.fromisoformat(stored["starts_at"]) == world.at(0, "09:00")


def test_only_a_scheduled_session_can_be_rescheduled(world: World) -> None:
    world.ready()
    done = world.session("preparation", world.at(0, "09:00"))
    start = world.at(3, "09:00")
    response = world.reschedule(done["session_id"], start)
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "SCH-STATE-1"
    assert "completed" in response.json()["error"]["message"]


# -- cancel ---------------------------------------------------------------------------------


def test_cancel_emits_session_cancelled_with_the_coded_reason_only(
    world: World, session: Session, outbox: Outbox, db: Path
) -> None:
    before = len(outbox())

    response = world.client.post(
        f"/sessions/{session['session_id']}/cancel",
        json={"reason": "patient_unwell", "note": "Called in with a fever"},
        headers=token("co-amy", "coordinator", ["site-a"]),
    )

    assert response.status_code == 200, response.text
    assert response.json()["status"] == "cancelled"
    assert response.json()["cancel_reason"] == "patient_unwell"
    assert the_one_event(outbox, before, "SessionCancelled") == {
        "session_id": session["session_id"],
        "phase": "preparation",
        "reason": "patient_unwell",
    }
    assert "fever" not in str(outbox())  # free text never leaves scheduling
    assert rows(db, "SELECT cancel_note FROM sessions") == [("Called in with a fever",)]


def test_a_cancelled_session_frees_its_slot(world: World, session: Session) -> None:
    assert world.cancel(session["session_id"]).status_code == 200
    assert world.book("preparation", world.at(0, "09:00")).status_code == 201


def test_cancel_twice_is_409_state(world: World, session: Session, outbox: Outbox) -> None:
    assert world.cancel(session["session_id"]).status_code == 200
    before = len(outbox())

    response = world.cancel(session["session_id"])

    assert response.status_code == 409
    assert response.json()["error"]["code"] == "SCH-STATE-1"
    assert response.json()["error"]["message"] == (
        "SCH-STATE-1: the session is cancelled; it cannot be cancelled"
    )
    assert len(outbox()) == before


def test_a_checked_in_session_can_be_cancelled(world: World, session: Session) -> None:
    world.clock.set(world.at(0, "08:55"))
    assert world.check_in(session["session_id"]).status_code == 200
    response = world.cancel(session["session_id"], "patient_unwell", as_=NURSE)
    assert response.status_code == 200, response.text


# -- check-in and complete --------------------------------------------------------------------


def test_check_in_stores_the_attestation(world: World, db: Path) -> None:
    world.prepared()
    session = world.booked("dosing", world.at(0, "09:00", week=1))
    world.clock.set(world.at(0, "08:40", week=1))
    body = world.attest()

    response = world.check_in(session["session_id"], body)

    assert response.status_code == 200, response.text
    assert response.json()["status"] == "checked_in"
    assert response.json()["checked_in_at"] is not None
    stored = rows(db, "SELECT session_id, checked_in_by, transport_arranged FROM sessions")
    assert (session["session_id"], "rn-dee", 1) in stored


def test_a_therapy_session_checks_in_without_a_body(
    world: World, session: Session, outbox: Outbox
) -> None:
    world.clock.set(world.at(0, "09:00"))
    before = len(outbox())
    response = world.client.post(f"/sessions/{session['session_id']}/check-in", headers=NURSE)
    assert response.status_code == 200, response.text
    assert types(events_since(outbox, before)) == ["SessionCheckedIn"]


def test_complete_emits_session_completed(world: World, session: Session, outbox: Outbox) -> None:
    world.clock.set(world.at(0, "08:55"))
    world.check_in(session["session_id"])
    world.clock.set(world.at(0, "10:00"))
    before = len(outbox())

    response = world.complete(session["session_id"])

    assert response.status_code == 200, response.text
    assert response.json()["status"] == "completed"
    assert the_one_event(outbox, before, "SessionCompleted") == {
        "session_id": session["session_id"],
        "phase": "preparation",
        "completed_at": world.at(0, "10:00").isoformat().replace("+00:00", "Z"),
        # Handoff facts for notifications (issue 11): no integration owed after preparation.
        "plan_id": session["plan_id"],
        "integration_due_by": None,
        "dosing_sessions_completed": 0,
        "planned_dosing_sessions": 6,
        "open_dosing_holds": 0,
    }


def test_complete_before_check_in_is_409_state(
    world: World, session: Session, outbox: Outbox
) -> None:
    before = len(outbox())
    response = world.complete(session["session_id"])
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "SCH-STATE-1"
    assert "checked in" in response.json()["error"]["message"]
    assert len(outbox()) == before


def test_SCH_DIS_1_dosing_cannot_complete_before_discharge_is_cleared(
    world: World, outbox: Outbox, counts: Counts
) -> None:
    world.prepared()
    session = world.booked("dosing", world.at(0, "09:00", week=1))
    world.clock.set(world.at(0, "08:55", week=1))
    assert world.check_in(session["session_id"], world.attest()).status_code == 200
    world.clock.set(world.at(0, "11:30", week=1))
    before = counts()

    refused = world.complete(session["session_id"])

    assert refused.status_code == 409
    assert refused.json()["error"]["code"] == "SCH-DIS-1"
    assert "discharge" in refused.json()["error"]["message"]
    assert counts() == before

    world.discharge(session["session_id"])
    accepted = world.complete(session["session_id"])
    assert accepted.status_code == 200, accepted.text
    assert accepted.json()["discharge_cleared_at"] is not None


def test_completing_a_dosing_session_sets_the_integration_deadline(world: World, db: Path) -> None:
    world.prepared()
    done = world.session("dosing", world.at(0, "09:00", week=1))
    completed_at = datetime.fromisoformat(done["completed_at"])

    plan = world.plan()

    [deadline] = plan["integration_deadlines"]
    assert deadline["dosing_session_id"] == done["session_id"]
    assert deadline["therapist_id"] == "th-ben"
    assert datetime.fromisoformat(deadline["due_by"]) == completed_at + timedelta(hours=72)
    assert deadline["status"] == "open"
    assert rows(db, "SELECT key, status FROM scheduled_jobs") == [
        (f"integration-due:{done['session_id']}", "pending")
    ]
    assert plan["next_action"].startswith(
        "Book the integration session after dosing session 1 with th-ben by "
    )


def test_completing_the_integration_session_meets_the_deadline_and_cancels_the_timer(
    world: World, db: Path
) -> None:
    world.prepared()
    dosing = world.session("dosing", world.at(0, "09:00", week=1))
    integration = world.session("integration", world.at(1, "09:00", week=1))

    [deadline] = world.plan()["integration_deadlines"]
    assert deadline["status"] == "met"
    assert deadline["met_by_session_id"] == integration["session_id"]
    assert rows(db, "SELECT key, status FROM scheduled_jobs") == [
        (f"integration-due:{dosing['session_id']}", "cancelled")
    ]


def test_get_session_shows_it(world: World, session: Session) -> None:
    response = world.client.get(f"/sessions/{session['session_id']}", headers=NURSE)
    assert response.status_code == 200
    assert response.json() == session


def test_concurrent_bookings_of_the_same_slot_cannot_both_succeed(
    world: World, outbox: Outbox
) -> None:
    patients = world.ready_patients("pt-c")
    before = len(outbox())

    statuses = world.book_at_once(patients, world.at(0, "09:00"))

    assert statuses == [201, 409, 409, 409]
    assert types(events_since(outbox, before)) == ["SessionScheduled"]


def test_SPR_SCH_3_close_esketamine_doses_are_booked_but_flagged_on_the_plan(
    world: World,
) -> None:
    world.prepared(route=Route.INTRANASAL_ESKETAMINE)
    world.booked("dosing", world.at(0, "09:00", week=1))
    assert world.book("dosing", world.at(1, "09:00", week=1)).status_code == 201

    assert world.plan()["warnings"] == [
        {
            "rule_id": "SPR-SCH-3",
            "message": "dosing sessions 1 and 2 are 24 h apart; esketamine doses are usually "
            "at least 48 h apart",
        }
    ]
