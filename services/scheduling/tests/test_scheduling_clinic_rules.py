"""Rules that match the clinic (issue 8, section 4), through HTTP and the consumer
path: MBC-1 at a re-screening holds dosing, SPR-SCH-1's InductionReviewDue (8th
session or the week-4 timer, exactly once), the SPR-SCH-4 chair block, shared
esketamine supervision (SPR-CERT-2), KAP-1 per protocol and the session's nurse."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from kap_shared.events import PatientScreened, new_id
from kap_shared.events.enums import Route, ScreeningOutcome
from kap_shared.events.intake import PatientScreenedData
from kap_shared.testing import token
from kap_shared.testing_app import screening_baseline

World = Any  # conftest.World
Outbox = Callable[[], list[dict[str, Any]]]
Counts = Callable[[], dict[str, int]]
FireTimers = Callable[[datetime], int]

ESK = Route.INTRANASAL_ESKETAMINE
PRESCRIBER = token("rx-ada", "prescriber", ["site-a"])
NEW_YORK = ZoneInfo("America/New_York")


def code(response: Any) -> str:
    assert response.status_code == 409, response.text
    rule: str = response.json()["error"]["code"]
    return rule


def published(outbox: Outbox, event_type: str) -> list[dict[str, Any]]:
    return [e for e in outbox() if e["event_type"] == event_type]


def book_beside(world: World, phase: str, **team: Any) -> Any:
    """pt-2's `phase` session at the time of pt-1's first dosing session (09:00, week 1),
    in the other room (room-a2), with `team`; the response."""
    at = world.at(0, "09:00", week=1)
    return world.book(phase, at, patient_id="pt-2", room_id="room-a2", **team)


# -- MBC-1 at a re-screening -------------------------------------------------------------------


def rescreen(world: World, *, item9: int, reviewed_by: str | None = None) -> PatientScreened:
    reasons = ["MBC-1"] if item9 else []
    event = PatientScreened(
        producer="intake",
        site_id="site-a",
        patient_id="pt-1",
        correlation_id="episode-pt-1",
        occurred_at=world.clock(),
        data=PatientScreenedData(
            screening_id=new_id(),
            outcome=ScreeningOutcome.NEEDS_REVIEW if item9 else ScreeningOutcome.ELIGIBLE,
            route=Route.IV,
            indications=["trd"],
            reasons=reasons,
            baseline=screening_baseline(
                phq9_total=14, phq9_item9=item9, gad7_total=8, heart_rate=70
            ),
            reviewed_by=reviewed_by,
        ),
    )
    assert world.deliver(event)
    return event


def test_MBC_1_rescreening_of_a_patient_with_a_plan_holds_dosing(world: World) -> None:
    world.prepared()
    rescreen(world, item9=1)

    plan = world.plan()
    [hold] = plan["holds"]
    assert (hold["source"], hold["value"], hold["severity"]) == (
        "PHQ-9 item 9 (re-screening)",
        1.0,
        "critical",
    )
    assert plan["status"] == "active"  # needs_review does not suspend the plan
    assert plan["next_action"].startswith("Dosing on hold: PHQ-9 item 9 (re-screening) answered 1")
    refused = world.book("dosing", world.at(0, "09:00", week=1))
    assert code(refused) == "SCH-HOLD-1"
    assert "a prescriber must clear the hold" in refused.json()["error"]["message"]

    # The prescriber's review re-publishes the reasons: no second hold.
    rescreen(world, item9=1, reviewed_by="rx-ada")
    assert len(world.plan()["holds"]) == 1

    cleared = world.client.post(
        f"/patients/pt-1/holds/{hold['hold_id']}/clear",
        json={"reason": "risk assessed"},
        headers=PRESCRIBER,
    )
    assert cleared.status_code == 200, cleared.text
    assert world.book("dosing", world.at(0, "09:00", week=1)).status_code == 201


def test_MBC_1_rescreening_answered_0_opens_no_hold(world: World) -> None:
    world.prepared()
    rescreen(world, item9=0)
    assert world.plan()["holds"] == []


def test_MBC_1_at_the_first_screening_opens_no_hold(world: World, counts: Counts) -> None:
    # Before any plan exists, the prescriber's review of the screening is the assessment.
    rescreen(world, item9=1)
    assert counts()["holds"] == 0


# -- SPR-SCH-1 --------------------------------------------------------------------------------


def week_boundary(world: World) -> datetime:
    """Site-local midnight after treatment week 4, counted from Monday of week 1."""
    return datetime.combine(world.monday + timedelta(days=7 + 28), time(0), NEW_YORK)


def dose(world: World, day: int, week: int) -> dict[str, Any]:
    done: dict[str, Any] = world.session("dosing", world.at(day, "09:00", week=week))
    return done


def test_SPR_SCH_1_eighth_induction_session_asks_the_prescriber_once(
    world: World, outbox: Outbox, fire_timers: FireTimers
) -> None:
    world.ready(route=ESK)
    for week in range(1, 5):
        for day in (0, 3):
            dose(world, day, week)
            if (week, day) == (4, 0):  # 7 completed: not yet
                assert published(outbox, "InductionReviewDue") == []

    [review] = published(outbox, "InductionReviewDue")
    assert review["data"] == {
        "plan_id": world.plan()["plan_id"],
        "prescriber_id": "rx-ada",
        "dosing_sessions_completed": 8,
        "rule_id": "SPR-SCH-1",
    }
    plan = world.plan()
    assert plan["induction_review_sessions"] == 8
    assert plan["next_action"].startswith(
        "rx-ada: evaluate the benefit of the esketamine induction (8 dosing sessions "
        "completed, SPR-SCH-1) before treatment continues. Then: "
    )
    # The week-4 timer was cancelled with it: nothing more is published.
    fire_timers(week_boundary(world) + timedelta(days=1))
    assert len(published(outbox, "InductionReviewDue")) == 1

    # Continuing (a completed dosing session after the review) retires the task.
    dose(world, 0, 5)
    assert "evaluate the benefit" not in world.plan()["next_action"]
    assert len(published(outbox, "InductionReviewDue")) == 1


def test_SPR_SCH_1_end_of_week_4_comes_first(
    world: World, outbox: Outbox, fire_timers: FireTimers
) -> None:
    world.ready(route=ESK)
    dose(world, 0, 1)
    dose(world, 3, 1)
    boundary = week_boundary(world)

    fire_timers(boundary - timedelta(seconds=1))  # (fires the KAP-2 integration timers)
    assert published(outbox, "InductionReviewDue") == []
    assert fire_timers(boundary) == 1

    [review] = published(outbox, "InductionReviewDue")
    assert review["data"]["dosing_sessions_completed"] == 2
    assert fire_timers(boundary + timedelta(days=1)) == 0  # fires exactly once
    dose(world, 0, 5)  # a later completion does not publish it again
    assert len(published(outbox, "InductionReviewDue")) == 1


def test_SPR_SCH_1_is_for_esketamine_only(
    world: World, outbox: Outbox, fire_timers: FireTimers
) -> None:
    world.prepared()  # IV
    dose(world, 0, 1)
    fire_timers(week_boundary(world) + timedelta(days=30))
    assert published(outbox, "InductionReviewDue") == []


# -- SPR-SCH-4, SPR-CERT-2, KAP-1 per protocol, nurse -----------------------------------------


def test_SPR_SCH_4_back_to_back_2h_sessions_in_one_room_refused(
    world: World, counts: Counts, outbox: Outbox
) -> None:
    world.ready("pt-1", ESK)
    world.ready("pt-2", ESK)
    world.booked("dosing", world.at(0, "09:00", week=1))
    before, sent = counts(), len(outbox())

    refused = world.book("dosing", world.at(0, "11:00", week=1), patient_id="pt-2")

    assert code(refused) == "SPR-SCH-4"
    assert "start at" in refused.json()["error"]["message"]
    assert (counts(), len(outbox())) == (before, sent)
    assert world.book("dosing", world.at(0, "11:30", week=1), patient_id="pt-2").status_code == 201


def test_SPR_CERT_2_one_prescriber_supervises_two_esketamine_chairs(world: World) -> None:
    world.ready("pt-1", ESK)
    world.ready("pt-2", ESK)
    world.booked("dosing", world.at(0, "09:00", week=1))
    second = book_beside(world, "dosing", therapist_id="th-cy")
    assert second.status_code == 201, second.text
    assert second.json()["prescriber_id"] == "rx-ada"


def test_SPR_CERT_2_esketamine_dosing_without_a_prescriber_refused(world: World) -> None:
    world.ready("pt-1", ESK)
    assert code(world.book("dosing", world.at(0, "09:00", week=1), prescriber_id=None)) == (
        "SPR-CERT-2"
    )


def test_KAP_1_esketamine_books_dosing_without_preparation_sessions(world: World) -> None:
    world.ready("pt-1", ESK)
    assert world.book("dosing", world.at(0, "09:00", week=1)).status_code == 201
    world.ready("pt-2", Route.IV)
    refused = book_beside(world, "dosing", therapist_id="th-cy", prescriber_id="rx-ada")
    assert code(refused) == "KAP-1"


def test_session_scheduled_names_the_nurse(world: World, outbox: Outbox) -> None:
    world.ready("pt-1", ESK)
    session = world.booked("dosing", world.at(0, "09:00", week=1), nurse_id="rn-dee")
    assert session["nurse_id"] == "rn-dee"
    [scheduled] = published(outbox, "SessionScheduled")
    assert scheduled["data"]["nurse_id"] == "rn-dee"


def test_nurse_id_must_name_a_nurse(world: World, counts: Counts) -> None:
    world.ready("pt-1", ESK)
    before = counts()
    response = world.book("dosing", world.at(0, "09:00", week=1), nurse_id="th-cy")
    assert response.status_code == 422, response.text
    assert response.json()["error"]["details"][0]["field"] == "nurse_id"
    assert counts() == before


# -- KAP-3: a therapist where the protocol says so ----------------------------------------------


def test_KAP_3_esketamine_dosing_names_the_plans_therapist_without_holding_them(
    world: World, outbox: Outbox
) -> None:
    world.ready("pt-1", ESK)
    therapist = world.plan()["therapist_id"]
    session = world.booked("dosing", world.at(0, "09:00", week=1), therapist_id=None)
    assert (session["therapist_id"], session["therapist_present"]) == (therapist, False)
    [scheduled] = published(outbox, "SessionScheduled")
    assert scheduled["data"]["therapist_id"] == therapist  # the contract requires one

    # Not at the chair: free for another patient's session at the same time.
    world.ready("pt-2", Route.IV)
    other = book_beside(world, "preparation", therapist_id=therapist)
    assert other.status_code == 201, other.text


def test_KAP_3_ketamine_dosing_without_a_therapist_is_422(world: World, counts: Counts) -> None:
    world.prepared()
    before = counts()
    response = world.book("dosing", world.at(0, "09:00", week=1), therapist_id=None)
    assert response.status_code == 422, response.text
    assert response.json()["error"]["details"][0]["field"] == "therapist_id"
    assert counts() == before


def test_KAP_3_esketamine_dosing_with_a_named_therapist_holds_them(world: World) -> None:
    world.ready("pt-1", ESK)
    session = world.booked("dosing", world.at(0, "09:00", week=1))
    assert session["therapist_present"] is True
