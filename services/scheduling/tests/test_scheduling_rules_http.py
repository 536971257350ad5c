"""Each gate over HTTP: 409 whose `error.code` is the rule id and whose message a
coordinator understands; nothing stored and nothing published. The boundaries
themselves are covered by the pure rule tests; here the rule is wired end to end,
with the accepted side of the same threshold where it is cheap to show."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime, timedelta
from typing import Any

import pytest

from kap_shared.events.enums import ConsentScope, Route, ScreeningOutcome
from kap_shared.testing import token

World = Any  # conftest.World
Counts = Callable[[], dict[str, int]]

ADMIN = token("adm-1", "admin", ["*"])


def refused(world: World, counts: Counts, call: Callable[[], Any], rule: str) -> str:
    before = counts()
    response = call()
    assert response.status_code == 409, response.text
    error = response.json()["error"]
    assert error["code"] == rule
    assert error["message"].startswith(f"{rule}: ")
    assert counts() == before
    message: str = error["message"]
    return message


def test_SCH_PLAN_1_no_plan(world: World, counts: Counts) -> None:
    world.screen("pt-x", outcome=ScreeningOutcome.INELIGIBLE)
    message = refused(
        world,
        counts,
        lambda: world.book("preparation", world.at(0), patient_id="pt-x"),
        "SCH-PLAN-1",
    )
    assert (
        message
        == "SCH-PLAN-1: the patient has no treatment plan: the patient was screened ineligible"
    )


def test_SCH_CONSENT_1_no_consent(world: World, counts: Counts) -> None:
    world.screen()
    refused(world, counts, lambda: world.book("preparation", world.at(0)), "SCH-CONSENT-1")


def test_KAP_1_one_preparation_session_is_not_enough_two_are(world: World, counts: Counts) -> None:
    world.ready()
    world.session("preparation", world.at(0))
    message = refused(world, counts, lambda: world.book("dosing", world.at(0, week=1)), "KAP-1")
    assert message == (
        "KAP-1: 1 of 2 preparation sessions completed; complete 1 more before booking dosing"
    )
    world.session("preparation", world.at(1))
    assert world.book("dosing", world.at(0, week=1)).status_code == 201


def test_KAP_3_dosing_without_prescriber(world: World, counts: Counts) -> None:
    world.prepared()
    refused(
        world,
        counts,
        lambda: world.book("dosing", world.at(0, week=1), prescriber_id=None),
        "KAP-3",
    )


def test_KAP_3_iv_chair_time_2h59_refused_3h_accepted(world: World, counts: Counts) -> None:
    world.prepared()
    start = world.at(0, "09:00", week=1)
    short = (start + timedelta(minutes=179)).isoformat()
    refused(world, counts, lambda: world.book("dosing", start, ends_at=short), "KAP-3")
    assert (
        world.book("dosing", start, ends_at=(start + timedelta(hours=3)).isoformat()).status_code
        == 201
    )


def test_SPR_SCH_4_esketamine_chair_time_1h59_refused_2h_accepted(
    world: World, counts: Counts
) -> None:
    world.prepared(route=Route.INTRANASAL_ESKETAMINE)
    start = world.at(0, "09:00", week=1)
    short = (start + timedelta(minutes=119)).isoformat()
    refused(world, counts, lambda: world.book("dosing", start, ends_at=short), "SPR-SCH-4")
    assert world.book("dosing", start).status_code == 201


def test_SPR_ENR_1_esketamine_without_rems_enrollment(world: World, counts: Counts) -> None:
    world.screen(route=Route.INTRANASAL_ESKETAMINE)
    world.consent(ConsentScope.TREATMENT, True)
    for day in (0, 1):
        world.session("preparation", world.at(day))
    refused(world, counts, lambda: world.book("dosing", world.at(0, week=1)), "SPR-ENR-1")
    world.consent(ConsentScope.REMS_ENROLLMENT, True)
    assert world.book("dosing", world.at(0, week=1)).status_code == 201


def test_SPR_CERT_1_expired_yesterday_refused_renewed_accepted(
    world: World, counts: Counts
) -> None:
    world.prepared(route=Route.INTRANASAL_ESKETAMINE)
    start = world.at(2, "09:00", week=1)
    session_day: date = world.monday + timedelta(days=9)
    expired = world.client.patch(
        "/sites/site-a",
        json={"rems_certified_until": (session_day - timedelta(days=1)).isoformat()},
        headers=ADMIN,
    )
    assert expired.status_code == 200
    message = refused(world, counts, lambda: world.book("dosing", start), "SPR-CERT-1")
    assert f"esketamine cannot be given there on {session_day.isoformat()}" in message

    renewed = world.client.patch(
        "/sites/site-a", json={"rems_certified_until": session_day.isoformat()}, headers=ADMIN
    )
    assert renewed.json()["rems_certified_until"] == session_day.isoformat()
    assert world.book("dosing", start).status_code == 201


def test_SPR_CERT_1_uncertified_site_b(world: World, counts: Counts) -> None:
    world.screen("pt-b", Route.INTRANASAL_ESKETAMINE, site_id="site-b")
    world.consent(ConsentScope.TREATMENT, True, "pt-b", site_id="site-b")
    world.consent(ConsentScope.REMS_ENROLLMENT, True, "pt-b", site_id="site-b")
    coordinator_b = token("co-b", "coordinator", ["site-b"])
    nurse_b = token("rn-b", "nurse", ["site-b"])
    for day in (0, 1):
        session = world.booked(
            "preparation",
            world.at(day),
            patient_id="pt-b",
            room_id="room-b1",
            therapist_id="th-bea",
            as_=coordinator_b,
        )
        world.clock.set(world.at(day, "08:55"))
        assert world.check_in(session["session_id"], as_=nurse_b).status_code == 200
        assert world.complete(session["session_id"], as_=nurse_b).status_code == 200
    message = refused(
        world,
        counts,
        lambda: world.book(
            "dosing",
            world.at(0, week=1),
            patient_id="pt-b",
            room_id="room-b1",
            therapist_id="th-bea",
            prescriber_id="rx-bo",
            as_=coordinator_b,
        ),
        "SPR-CERT-1",
    )
    assert "site-b is not a REMS-certified setting" in message


def test_SPR_SCH_2_third_esketamine_dosing_in_week_2_refused(world: World, counts: Counts) -> None:
    world.prepared(route=Route.INTRANASAL_ESKETAMINE)
    for day, week in ((0, 1), (3, 1), (0, 2), (2, 2)):
        world.booked("dosing", world.at(day, week=week))
    message = refused(world, counts, lambda: world.book("dosing", world.at(4, week=2)), "SPR-SCH-2")
    assert "treatment week 2" in message
    assert "would have 3" in message


def test_KET_SER_1_fourth_iv_dosing_in_a_week_refused(world: World, counts: Counts) -> None:
    world.prepared()
    for day in (0, 1, 2):
        world.booked("dosing", world.at(day, week=1))
    refused(world, counts, lambda: world.book("dosing", world.at(3, week=1)), "KET-SER-1")


def test_SCH_ALT_1_kap_dosing_needs_the_integration_in_between(
    world: World, counts: Counts
) -> None:
    world.prepared(route=Route.SUBLINGUAL)
    world.booked("dosing", world.at(0, week=1))
    refused(world, counts, lambda: world.book("dosing", world.at(3, week=1)), "SCH-ALT-1")
    world.booked("integration", world.at(1, week=1))
    assert world.book("dosing", world.at(3, week=1)).status_code == 201


def test_KAP_2_integration_with_another_therapist(world: World, counts: Counts) -> None:
    world.prepared()
    world.booked("dosing", world.at(0, week=1))
    refused(
        world,
        counts,
        lambda: world.book("integration", world.at(1, week=1), therapist_id="th-cy"),
        "KAP-2",
    )


def test_SCH_INT_1_integration_before_dosing(world: World, counts: Counts) -> None:
    world.ready()
    refused(world, counts, lambda: world.book("integration", world.at(0)), "SCH-INT-1")


def test_SCH_COURSE_1_no_seventh_iv_dosing_session(world: World, counts: Counts) -> None:
    world.prepared()
    for n in range(6):
        world.booked("dosing", world.at((0, 2, 4)[n % 3], week=1 + n // 3))
    refused(world, counts, lambda: world.book("dosing", world.at(0, week=3)), "SCH-COURSE-1")


def test_SCH_SITE_1_room_of_another_site(world: World, counts: Counts) -> None:
    world.ready()
    refused(
        world,
        counts,
        lambda: world.book("preparation", world.at(0), room_id="room-b1"),
        "SCH-SITE-1",
    )


def test_SCH_HOURS_1_outside_the_therapists_hours(world: World, counts: Counts) -> None:
    world.ready()
    message = refused(
        world,
        counts,
        lambda: world.book("preparation", world.at(0, "17:30"), therapist_id="th-cy"),
        "SCH-HOURS-1",
    )
    assert message == (
        "SCH-HOURS-1: th-cy works 09:00-17:00 on Mondays (America/New_York); the session runs "
        "17:30-18:30"
    )
    assert world.book("preparation", world.at(0, "16:00"), therapist_id="th-cy").status_code == 201


def test_SCH_CONFLICT_patient_clinician_and_room(world: World, counts: Counts) -> None:
    world.ready()
    world.ready("pt-2")
    world.booked("preparation", world.at(0, "09:00"))

    def attempt(**overrides: str) -> Any:
        return world.book("preparation", world.at(0, "09:30"), **overrides)

    refused(
        world,
        counts,
        lambda: attempt(room_id="room-a2", therapist_id="th-cy"),
        "SCH-CONFLICT-PATIENT",
    )
    refused(
        world,
        counts,
        lambda: attempt(patient_id="pt-2", room_id="room-a2"),
        "SCH-CONFLICT-CLINICIAN",
    )
    refused(
        world, counts, lambda: attempt(patient_id="pt-2", therapist_id="th-cy"), "SCH-CONFLICT-ROOM"
    )
    back_to_back = world.book(
        "preparation", world.at(0, "10:00"), patient_id="pt-2", therapist_id="th-cy"
    )
    assert back_to_back.status_code == 201


def test_SCH_CHECKIN_1_too_early(world: World, counts: Counts) -> None:
    world.ready()
    session = world.booked("preparation", world.at(0, "09:00"))
    world.clock.set(world.at(0, "07:59"))
    refused(world, counts, lambda: world.check_in(session["session_id"]), "SCH-CHECKIN-1")
    world.clock.set(world.at(0, "08:00"))
    assert world.check_in(session["session_id"]).status_code == 200


def test_SPR_PRE_1_food_1h59_refused_2h_accepted(world: World, counts: Counts) -> None:
    world.prepared(route=Route.INTRANASAL_ESKETAMINE)
    session = world.booked("dosing", world.at(0, "09:00", week=1))
    world.clock.set(world.at(0, "08:50", week=1))

    def ate(minutes: int) -> str:
        moment: datetime = world.clock() - timedelta(minutes=minutes)
        return moment.isoformat()

    message = refused(
        world,
        counts,
        lambda: world.check_in(session["session_id"], world.attest(last_food_at=ate(119))),
        "SPR-PRE-1",
    )
    assert message.endswith("the patient last ate 1 h 59 min ago")
    accepted = world.check_in(session["session_id"], world.attest(last_food_at=ate(120)))
    assert accepted.status_code == 200, accepted.text


@pytest.mark.parametrize(
    ("route", "too_soon", "fasting_rule", "way_home_rule"),
    [
        # SPR-PRE-2: no liquids 30 min before esketamine; SPR-PRE-8: transport home.
        (Route.INTRANASAL_ESKETAMINE, {"last_liquid_at": 29}, "SPR-PRE-2", "SPR-PRE-8"),
        # KET-PRE-1: no solid food 4 h before ketamine; KET-PRE-3: an escort home.
        (Route.IV, {"last_food_at": 239}, "KET-PRE-1", "KET-PRE-3"),
    ],
    ids=["esketamine", "ketamine"],
)
def test_SPR_PRE_2_SPR_PRE_8_KET_PRE_1_KET_PRE_3_fasting_then_the_way_home(
    world: World,
    counts: Counts,
    route: Route,
    too_soon: dict[str, int],
    fasting_rule: str,
    way_home_rule: str,
) -> None:
    world.prepared(route=route)
    session = world.booked("dosing", world.at(0, "09:00", week=1))
    world.clock.set(world.at(0, "08:50", week=1))
    [(field, minutes_ago)] = too_soon.items()
    last = (world.clock() - timedelta(minutes=minutes_ago)).isoformat()
    refused(
        world,
        counts,
        lambda: world.check_in(session["session_id"], world.attest(**{field: last})),
        fasting_rule,
    )
    refused(
        world,
        counts,
        lambda: world.check_in(session["session_id"], world.attest(transport_arranged=False)),
        way_home_rule,
    )
