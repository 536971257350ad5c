"""Issue 3's DONE-WHEN, end to end over HTTP and the real broker (on SQLite and on
PostgreSQL): an esketamine patient and an IV ketamine patient from referral through
screening (the IV patient through a prescriber's review), consent, preparation, a
complete course with an integration session after every dosing session, and the
full, ordered event sequence of each on kap.scheduling.events.v1.

The esketamine patient does the whole protocol, 12 dosing sessions (twice weekly in
weeks 1-4, weekly in weeks 5-8); the IV patient its 6. Sessions are booked weeks
ahead; tests/rules/scheduling.json opens the check-in window of `site-pathway`
months early so the course can be run through now. monitoring's DischargeCleared is
produced by the test. Also: IntegrationOverdue from a durable timer that neither a
crash nor a restart loses or repeats (`site-overdue`, a 14.4-second deadline).
"""

from __future__ import annotations

import asyncio
import signal
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from scheduling_flows import (
    Course,
    SchedulingSite,
    approve,
    consent,
    create_site,
    enrolled,
    gather,
    plan_when,
    refer,
    scheduling,
    screen,
)
from support import TopicReader, timers_settled

from kap_local.platform import Platform
from kap_shared.events import decode, topics

pytestmark = [pytest.mark.kafka, pytest.mark.e2e]

Event = dict[str, Any]


@dataclass(frozen=True)
class Schedule:
    """When a course's sessions are, in site time: the preparation sessions on days 0
    and 1 at `hhmm`, a dosing session at `hhmm` on each (week, day) of `dosing_days`,
    each followed by its integration session `integration_days_later` days later at
    `integration_hhmm`."""

    hhmm: str
    dosing_days: list[tuple[int, int]]
    integration_days_later: int
    integration_hhmm: str


# Esketamine TRD (SPR-SCH-1/2): Mon + Thu in weeks 1-4, Mon in weeks 5-8; integration next day.
# After the 8th dosing session the prescriber is asked to evaluate the benefit (SPR-SCH-1).
ESKETAMINE_COURSE = Schedule(
    "09:00",
    [(week, day) for week in range(1, 5) for day in (0, 3)] + [(week, 0) for week in range(5, 9)],
    integration_days_later=1,
    integration_hhmm="09:00",
)
# IV induction (KET-SER-1): Mon, Wed, Fri for two weeks; integration the same afternoon.
IV_COURSE = Schedule(
    "13:00",
    [(week, day) for week in (1, 2) for day in (0, 2, 4)],
    integration_days_later=0,
    integration_hhmm="16:30",
)


def expected_types(dosing_sessions: int, induction_review_after: int | None = None) -> list[str]:
    types = ["TreatmentPlanCreated", "PhaseAdvanced"]
    types += ["SessionScheduled", "SessionCheckedIn", "SessionCompleted"] * 2  # preparation
    for n in range(1, dosing_sessions + 1):
        types += ["SessionScheduled", "SessionCheckedIn"]
        types += ["PhaseAdvanced"] if n == 1 else []  # preparation -> dosing
        types += ["SessionCompleted"]
        types += ["PhaseAdvanced"] if n == dosing_sessions else []  # dosing -> integration
        types += ["InductionReviewDue"] if n == induction_review_after else []  # SPR-SCH-1
        types += ["SessionScheduled", "SessionCheckedIn", "SessionCompleted"]  # integration
    return types


async def planned(
    platform: Platform,
    site: SchedulingSite,
    patient_id: str,
    consents: tuple[str, ...],
    protocol: str,
    dosing_sessions: int,
) -> dict[str, Any]:
    """The plan of an eligible patient once `consents` are recorded: of `protocol`, with
    `dosing_sessions` planned."""
    for scope in consents:
        await consent(platform, site, patient_id, scope)
    plan = await plan_when(platform, site, patient_id, consents=consents)
    assert (plan["protocol"], plan["planned_dosing_sessions"]) == (protocol, dosing_sessions)
    return plan


async def run_course(course: Course, room: str, schedule: Schedule) -> None:
    """Every session of the course at the times of `schedule`, all in `room`."""
    at, hhmm = course.site.at, schedule.hhmm
    for day in (0, 1):
        await course.run_session("preparation", at(day, hhmm), room_id=room)
    for week, day in schedule.dosing_days:
        await course.run_session("dosing", at(day, hhmm, week=week), room_id=room)
        integration_day = day + schedule.integration_days_later
        integration_at = at(integration_day, schedule.integration_hhmm, week=week)
        await course.run_session("integration", integration_at, room_id=room)


async def esketamine_patient(platform: Platform, site: SchedulingSite) -> dict[str, Any]:
    patient_id = await refer(platform, site)
    screening = await screen(platform, site, patient_id, route="intranasal_esketamine")
    assert screening["outcome"] == "eligible"
    consents = ("treatment", "rems_enrollment")
    plan = await planned(platform, site, patient_id, consents, "esketamine_trd", 12)
    await run_course(Course(platform, site, plan), site.rooms[0], ESKETAMINE_COURSE)
    return plan


async def iv_patient_through_review(platform: Platform, site: SchedulingSite) -> dict[str, Any]:
    patient_id = await refer(platform, site)
    high_bp = {"bp_systolic": 150, "bp_diastolic": 95, "heart_rate": 74}
    screening = await screen(platform, site, patient_id, route="iv", vitals=high_bp)
    assert (screening["outcome"], screening["reasons"]) == ("needs_review", ["SPR-PRE-5"])
    review = await approve(platform, site, patient_id, screening["screening_id"])
    assert review["outcome"] == "eligible"
    plan = await planned(platform, site, patient_id, ("treatment",), "ketamine_iv_induction", 6)
    await run_course(Course(platform, site, plan), site.rooms[1], IV_COURSE)
    return plan


def assert_course(
    events: list[Event],
    plan: dict[str, Any],
    dosing_sessions: int,
    induction_review_after: int | None = None,
) -> None:
    assert [e["event_type"] for e in events] == expected_types(
        dosing_sessions, induction_review_after
    )
    for event in events:
        decode(topics.SCHEDULING_EVENTS, event)  # every event is the contract's
        assert event["producer"] == "scheduling"
        assert event["correlation_id"] == plan["correlation_id"]
        assert event["site_id"] == plan["site_id"]
    created = events[0]["data"]
    assert created["plan_id"] == plan["plan_id"]
    assert created["planned_dosing_sessions"] == dosing_sessions
    phases = [
        (e["data"]["from_phase"], e["data"]["to_phase"])
        for e in events
        if e["event_type"] == "PhaseAdvanced"
    ]
    assert phases == [(None, "preparation"), ("preparation", "dosing"), ("dosing", "integration")]

    scheduled = [e["data"] for e in events if e["event_type"] == "SessionScheduled"]
    by_phase: dict[str, list[int]] = {}
    for data in scheduled:
        by_phase.setdefault(data["phase"], []).append(data["sequence"])
        assert data["plan_id"] == plan["plan_id"]
        assert data["therapist_id"] == plan["therapist_id"]
    assert by_phase == {
        "preparation": [1, 2],
        "dosing": list(range(1, dosing_sessions + 1)),
        "integration": list(range(1, dosing_sessions + 1)),
    }
    assert all(
        d["prescriber_id"] == plan["prescriber_id"] for d in scheduled if d["phase"] == "dosing"
    )
    # Causation: the phase changes point at the check-in and the completion that caused them.
    index = {e["event_id"]: e for e in events}
    to_dosing, to_integration = [e for e in events if e["event_type"] == "PhaseAdvanced"][1:]
    assert index[to_dosing["causation_id"]]["event_type"] == "SessionCheckedIn"
    assert index[to_integration["causation_id"]]["event_type"] == "SessionCompleted"


async def test_esketamine_and_iv_patients_through_a_complete_course(platform: Platform) -> None:
    site = await create_site(platform, "site-pathway", prescribers=2, therapists=2)
    started = time.monotonic()
    esketamine, iv = await gather(
        esketamine_patient(platform, site), iv_patient_through_review(platform, site)
    )
    # Two patients, two care teams: the least-loaded clinicians were chosen.
    assert {esketamine["therapist_id"], iv["therapist_id"]} == set(site.therapists)

    async with TopicReader(platform.bootstrap, topics.SCHEDULING_EVENTS) as reader:
        counts = {esketamine["patient_id"]: 83, iv["patient_id"]: 46}
        await reader.wait_for(
            lambda _: all(len(reader.of_patient(p)) >= n for p, n in counts.items()), timeout=60
        )
        esketamine_events = reader.of_patient(esketamine["patient_id"])
        assert_course(esketamine_events, esketamine, 12, induction_review_after=8)
        [review] = [e for e in esketamine_events if e["event_type"] == "InductionReviewDue"]
        assert review["data"] == {
            "plan_id": esketamine["plan_id"],
            "prescriber_id": esketamine["prescriber_id"],
            "dosing_sessions_completed": 8,
            "rule_id": "SPR-SCH-1",
        }
        assert_course(reader.of_patient(iv["patient_id"]), iv, 6)

    for plan, dosing_sessions in ((esketamine, 12), (iv, 6)):
        final = await plan_when(platform, site, plan["patient_id"])
        assert (final["status"], final["phase"]) == ("active", "integration")
        assert final["progress"]["dosing_completed"] == dosing_sessions
        assert final["progress"]["integration_completed"] == dosing_sessions
        assert [d["status"] for d in final["integration_deadlines"]] == ["met"] * dosing_sessions
        assert final["next_action"].startswith(
            f"Dosing course complete ({dosing_sessions} of {dosing_sessions} dosing sessions)"
        )
    print(f"care pathway: {time.monotonic() - started:.1f} s")


async def _overdue(reader: TopicReader, patient_id: str) -> list[Event]:
    await reader.poll(1.0)
    return [e for e in reader.of_patient(patient_id) if e["event_type"] == "IntegrationOverdue"]


async def test_integration_overdue_survives_a_crash_and_a_restart_exactly_once(
    platform: Platform,
) -> None:
    site = await create_site(platform, "site-overdue")
    plan = await enrolled(platform, site)
    patient_id = plan["patient_id"]
    # No preparation needed at this site (KAP-1 minimum 0); the deadline is 14.4 s.
    dosing = await Course(platform, site, plan).run_session(
        "dosing", site.at(0, "13:00", week=1), room_id=site.rooms[0]
    )
    due_by = datetime.fromisoformat(dosing["completed_at"]) + timedelta(hours=0.004)

    service = platform["scheduling"]
    service.kill(signal.SIGKILL)  # down before the deadline: the timer must survive it
    assert datetime.now(UTC) < due_by, "the crash must come before the deadline"
    async with TopicReader(platform.bootstrap, topics.SCHEDULING_EVENTS) as reader:
        assert await _overdue(reader, patient_id) == []
        await asyncio.sleep(max(0.0, (due_by - datetime.now(UTC)).total_seconds()) + 1.0)
        assert await _overdue(reader, patient_id) == []  # nobody up to fire it

        service.start()
        service.wait_ready()
        await reader.wait_for(
            lambda _: any(
                e["event_type"] == "IntegrationOverdue" for e in reader.of_patient(patient_id)
            ),
            timeout=60,
        )
        [overdue] = await _overdue(reader, patient_id)
        assert overdue["data"]["dosing_session_id"] == dosing["session_id"]
        assert overdue["data"]["therapist_id"] == plan["therapist_id"]
        assert datetime.fromisoformat(overdue["data"]["due_by"]) == due_by
        completed = next(
            e
            for e in reader.of_patient(patient_id)
            if e["event_type"] == "SessionCompleted"
            and e["data"]["session_id"] == dosing["session_id"]
        )
        assert overdue["causation_id"] == completed["event_id"]
        assert overdue["correlation_id"] == plan["correlation_id"]

        # A second crash and restart: the fired timer does not fire again.
        service.kill(signal.SIGKILL)
        service.start()
        service.wait_ready()
        await timers_settled(service.url)  # nothing due is left unfired, all of it sent
        await reader.read_to_end()
        again = [
            e for e in reader.of_patient(patient_id) if e["event_type"] == "IntegrationOverdue"
        ]
        # At-least-once delivery may repeat a record, never the fact: one event id.
        assert {e["event_id"] for e in again} == {overdue["event_id"]}

        response = await scheduling(platform).request(
            "GET", f"/patients/{patient_id}/plan", as_=site.coordinator_
        )
        [deadline] = response.json()["integration_deadlines"]
        assert deadline["status"] == "overdue"
        assert response.json()["next_action"].startswith(
            "Integration after dosing session 1 is overdue"
        )
