"""Scheduling's reactions to other services' events, through its consumer path:
ConsentRecorded (intake), SafetyConcernRaised and DischargeCleared (monitoring),
and PatientScreened ineligible (suspension)."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from kap_shared.events import DischargeCleared
from kap_shared.events.enums import ConsentScope, Route, ScreeningOutcome, Severity
from kap_shared.events.monitoring import DischargeClearedData
from kap_shared.testing import rows, token

World = Any  # conftest.World
Outbox = Callable[[], list[dict[str, Any]]]
Counts = Callable[[], dict[str, int]]

PRESCRIBER = token("rx-ada", "prescriber", ["site-a"])


def code(response: Any) -> str:
    assert response.status_code == 409, response.text
    rule: str = response.json()["error"]["code"]
    return rule


# -- consents ---------------------------------------------------------------------------------


def test_consents_are_tracked_per_scope_and_shown_on_the_plan(world: World, db: Path) -> None:
    world.screen()
    world.consent(ConsentScope.TREATMENT, True)
    world.consent(ConsentScope.DATA_SHARING, False)

    consents = world.plan()["consents"]

    assert {scope: c["granted"] for scope, c in consents.items()} == {
        "treatment": True,
        "data_sharing": False,
    }
    assert rows(db, "SELECT scope, granted FROM consents ORDER BY scope") == [
        ("data_sharing", 0),
        ("treatment", 1),
    ]


def test_SCH_CONSENT_1_withdrawal_blocks_booking_and_consenting_again_unblocks(
    world: World, counts: Counts
) -> None:
    world.ready()
    world.consent(ConsentScope.TREATMENT, False)
    before = counts()

    refused = world.book("preparation", world.at(0))

    assert code(refused) == "SCH-CONSENT-1"
    assert "withdrawn treatment consent" in refused.json()["error"]["message"]
    assert counts() == before
    world.consent(ConsentScope.TREATMENT, True)
    assert world.book("preparation", world.at(0)).status_code == 201


def test_the_latest_consent_decision_wins_even_when_an_older_one_arrives_late(
    world: World,
) -> None:
    world.screen()
    world.consent(ConsentScope.TREATMENT, False, occurred_at=world.clock())
    world.consent(ConsentScope.TREATMENT, True, occurred_at=world.clock() - timedelta(hours=1))
    assert world.plan()["consents"]["treatment"]["granted"] is False


def test_consent_recorded_before_screening_counts_once_the_plan_exists(world: World) -> None:
    world.consent(ConsentScope.TREATMENT, True)
    world.screen()
    assert world.book("preparation", world.at(0)).status_code == 201


def test_a_redelivered_consent_has_no_second_effect(world: World, db: Path) -> None:
    world.screen()
    event = world.consent(ConsentScope.TREATMENT, True)
    assert world.deliver(event) is False
    assert rows(db, "SELECT COUNT(*) FROM consents") == [(1,)]


# -- safety holds ------------------------------------------------------------------------------


def test_safety_concern_opens_a_hold_shown_on_the_plan(world: World) -> None:
    world.prepared()
    world.concern(value=2)

    plan = world.plan()

    [hold] = plan["holds"]
    assert (hold["source"], hold["value"], hold["severity"], hold["status"]) == (
        "PHQ-9 item 9",
        2.0,
        "critical",
        "open",
    )
    day = world.clock().astimezone(ZoneInfo("America/New_York")).date().isoformat()
    assert plan["next_action"] == (
        f"Dosing on hold: PHQ-9 item 9 answered 2 on {day}; a prescriber must clear the hold. "
        "Preparation and integration sessions can still be booked."
    )


def test_SCH_HOLD_1_hold_blocks_dosing_until_a_prescriber_clears_it(
    world: World, counts: Counts, outbox: Outbox
) -> None:
    world.prepared()
    world.concern()
    before = counts()

    refused = world.book("dosing", world.at(0, "09:00", week=1))

    assert code(refused) == "SCH-HOLD-1"
    assert refused.json()["error"]["message"].startswith(
        "SCH-HOLD-1: Dosing on hold: PHQ-9 item 9 answered 1 on "
    )
    assert counts() == before
    assert world.book("integration", world.at(0, "09:00", week=1)).status_code == 409  # SCH-INT-1
    assert world.book("preparation", world.at(0, "09:00", week=1)).status_code == 201

    hold_id = world.plan()["holds"][0]["hold_id"]
    published = len(outbox())
    cleared = world.client.post(
        f"/patients/pt-1/holds/{hold_id}/clear",
        json={"reason": "C-SSRS negative; safety plan in place"},
        headers=PRESCRIBER,
    )

    assert cleared.status_code == 200, cleared.text
    assert (cleared.json()["status"], cleared.json()["cleared_by"]) == ("cleared", "rx-ada")
    assert len(outbox()) == published  # nothing to publish: no contract event for it
    assert "C-SSRS" not in json.dumps(cleared.json())  # the assessment stays private
    assert world.plan()["holds"] == []
    assert world.book("dosing", world.at(2, "09:00", week=1)).status_code == 201


def test_SCH_HOLD_1_a_hold_raised_after_booking_blocks_the_dosing_check_in(
    world: World, counts: Counts
) -> None:
    world.prepared()
    session = world.booked("dosing", world.at(0, "09:00", week=1))
    world.concern()
    world.clock.set(world.at(0, "08:50", week=1))
    before = counts()
    assert code(world.check_in(session["session_id"], world.attest())) == "SCH-HOLD-1"
    assert counts() == before


def test_SCH_HOLD_2_clearing_a_hold_twice_is_409(world: World, counts: Counts) -> None:
    world.ready()
    world.concern()
    hold_id = world.plan()["holds"][0]["hold_id"]
    path = f"/patients/pt-1/holds/{hold_id}/clear"
    assert world.client.post(path, json={"reason": "ok"}, headers=PRESCRIBER).status_code == 200
    before = counts()
    again = world.client.post(path, json={"reason": "ok"}, headers=PRESCRIBER)
    assert code(again) == "SCH-HOLD-2"
    assert "already cleared by rx-ada" in again.json()["error"]["message"]
    assert counts() == before


def test_every_open_hold_must_be_cleared(world: World) -> None:
    world.prepared()
    world.concern(value=1)
    world.concern(value=3)
    first = world.plan()["holds"][0]["hold_id"]
    world.client.post(
        f"/patients/pt-1/holds/{first}/clear", json={"reason": "ok"}, headers=PRESCRIBER
    )
    assert code(world.book("dosing", world.at(0, "09:00", week=1))) == "SCH-HOLD-1"


def test_a_hold_can_arrive_before_the_plan(world: World) -> None:
    world.concern()
    world.ready()
    assert len(world.plan()["holds"]) == 1


@pytest.fixture
def rules_file(tmp_path: Path) -> Path:
    path = tmp_path / "rules.json"
    path.write_text(json.dumps({"sites": {"site-a": {"hold_severities": ["critical"]}}}))
    return path


def test_SCH_HOLD_1_which_severities_hold_dosing_is_configurable_per_site(world: World) -> None:
    world.ready()
    world.concern(severity=Severity.WARNING)
    assert world.plan()["holds"] == []
    world.concern(severity=Severity.CRITICAL)
    assert len(world.plan()["holds"]) == 1


# -- discharge ---------------------------------------------------------------------------------


def test_discharge_cleared_is_recorded_on_the_session(world: World, db: Path) -> None:
    world.prepared()
    session = world.booked("dosing", world.at(0, "09:00", week=1))
    event = world.discharge(session["session_id"])
    assert rows(db, "SELECT discharge_event_id FROM sessions WHERE phase = 'dosing'") == [
        (str(event.event_id),)
    ]


@pytest.mark.parametrize("mismatch", ["unknown session", "another patient"])
def test_discharge_for_a_session_scheduling_does_not_know_is_ignored(
    world: World, counts: Counts, mismatch: str
) -> None:
    world.prepared()
    session = world.booked("dosing", world.at(0, "09:00", week=1))
    before = counts()
    event = DischargeCleared(
        producer="monitoring",
        site_id="site-a",
        patient_id="pt-2" if mismatch == "another patient" else "pt-1",
        correlation_id="episode-x",
        data=DischargeClearedData(
            session_id="s-unknown" if mismatch == "unknown session" else session["session_id"],
            first_dose_at=world.clock(),
            cleared_at=world.clock(),
            observed_minutes=120,
        ),
    )
    assert world.deliver(event) is True  # processed (recorded in the inbox), no effect
    assert counts() == before


# -- suspension --------------------------------------------------------------------------------


def test_ineligible_screening_suspends_the_plan_and_cancels_booked_sessions(
    world: World, outbox: Outbox, counts: Counts
) -> None:
    world.prepared()
    dosing = world.booked("dosing", world.at(0, "09:00", week=1))
    prep = world.booked("preparation", world.at(1, "14:00", week=1))
    before = len(outbox())

    event = world.screen(outcome=ScreeningOutcome.INELIGIBLE)

    cancelled = outbox()[before:]
    assert [(e["event_type"], e["data"]["session_id"], e["data"]["reason"]) for e in cancelled] == [
        ("SessionCancelled", dosing["session_id"], "plan_suspended"),
        ("SessionCancelled", prep["session_id"], "plan_suspended"),
    ]
    assert all(e["causation_id"] == str(event.event_id) for e in cancelled)
    plan = world.plan()
    assert plan["status"] == "suspended"
    assert plan["next_action"].startswith("Plan suspended after an ineligible screening on ")
    refused = world.book("preparation", world.at(2, "09:00", week=1))
    assert code(refused) == "SCH-PLAN-1"
    assert "suspended" in refused.json()["error"]["message"]


def test_a_suspended_plan_keeps_the_integration_it_owes(world: World, outbox: Outbox) -> None:
    world.prepared()
    world.session("dosing", world.at(0, "09:00", week=1))
    integration = world.booked("integration", world.at(1, "09:00", week=1))

    world.screen(outcome=ScreeningOutcome.INELIGIBLE)

    assert outbox()[-1]["event_type"] != "SessionCancelled"
    assert world.plan()["sessions"][-1]["session_id"] == integration["session_id"]
    assert world.plan()["sessions"][-1]["status"] == "scheduled"
    next_action = world.plan()["next_action"]
    assert next_action.startswith("Plan suspended after an ineligible screening on ")
    assert (
        " Complete the integration session after dosing session 1 with th-ben, booked for "
        in next_action
    )
    world.run(integration)
    assert [d["status"] for d in world.plan()["integration_deadlines"]] == ["met"]


def test_needs_review_means_no_plan_yet(world: World, counts: Counts) -> None:
    world.screen(outcome=ScreeningOutcome.NEEDS_REVIEW)
    world.consent(ConsentScope.TREATMENT, True)
    before = counts()
    refused = world.book("preparation", world.at(0))
    assert code(refused) == "SCH-PLAN-1"
    assert refused.json()["error"]["message"] == (
        "SCH-PLAN-1: the patient has no treatment plan: the screening is waiting for a "
        "prescriber's review"
    )
    assert counts() == before
    world.screen(reviewed_by="rx-ada")
    assert world.book("preparation", world.at(0)).status_code == 201


def test_a_new_eligible_screening_after_suspension_starts_a_new_plan(world: World) -> None:
    world.ready(route=Route.INTRANASAL_ESKETAMINE)
    first = world.plan()["plan_id"]
    world.screen(outcome=ScreeningOutcome.INELIGIBLE)
    world.screen(route=Route.IV)
    plan = world.plan()
    assert plan["plan_id"] != first
    assert (plan["status"], plan["protocol"]) == ("active", "ketamine_iv_induction")
