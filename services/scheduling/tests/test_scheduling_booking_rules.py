"""Booking rules, pure (kap_scheduling.domain.booking): every threshold tested on
both sides, test names citing the rule id."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest

from kap_scheduling.domain import model
from kap_scheduling.domain.booking import (
    BookingContext,
    Proposal,
    check_booking,
    next_sequence,
)
from kap_scheduling.domain.protocols import protocol_for
from kap_scheduling.domain.rules import SchedulingRules
from kap_shared.events.enums import ConsentScope, Phase, Role, Route, Severity

NY = ZoneInfo("America/New_York")
MONDAY = date(2027, 1, 4)  # ISO week 2027-W01
SITE = model.SiteInfo("site-a", "America/New_York", date(2027, 12, 31))
RULES = SchedulingRules()
RX = model.StaffMember("rx-ada", Role.PRESCRIBER, ("site-a",))
TH = model.StaffMember("th-ben", Role.THERAPIST, ("site-a",))
OFFICE_HOURS = {d: (time(9), time(17)) for d in ("mon", "tue", "wed", "thu", "fri")}
TH_CY = model.StaffMember("th-cy", Role.THERAPIST, ("site-a",), OFFICE_HOURS)
CONSENTED = {ConsentScope.TREATMENT: True, ConsentScope.REMS_ENROLLMENT: True}
DOSING_MINUTES = {Route.INTRANASAL_ESKETAMINE: 120}
_ids = iter(range(10_000))

P, D, I = Phase.PREPARATION, Phase.DOSING, Phase.INTEGRATION  # noqa: E741


def at(day: int, hhmm: str = "09:00", week: int = 0) -> datetime:
    """New York local time on `day` (0 = Monday) of week `week` after MONDAY, in UTC."""
    local = datetime.combine(MONDAY + timedelta(days=day + 7 * week), time.fromisoformat(hhmm), NY)
    return local.astimezone(UTC)


def plan(
    route: Route = Route.IV,
    *,
    status: model.PlanStatus = model.PlanStatus.ACTIVE,
    phase: Phase = Phase.PREPARATION,
) -> model.PlanInfo:
    protocol = protocol_for(route)  # the route's own (test_scheduling_domain checks them)
    return model.PlanInfo(
        plan_id="plan-1",
        patient_id="pt-1",
        site_id="site-a",
        status=status,
        route=route,
        protocol=protocol.name,
        planned_dosing_sessions=protocol.planned_dosing_sessions,
        phase=phase,
        prescriber_id="rx-ada",
        therapist_id="th-ben",
        suspended_at=at(0, "08:00", week=-1) if status is model.PlanStatus.SUSPENDED else None,
    )


def slot(
    phase: Phase,
    start: datetime,
    minutes: int = 60,
    *,
    status: model.SessionStatus = model.SessionStatus.SCHEDULED,
    patient_id: str = "pt-1",
    therapist_id: str = "th-ben",
    prescriber_id: str | None = None,
    room_id: str = "room-a1",
    sequence: int = 1,
    session_id: str | None = None,
) -> model.Slot:
    return model.Slot(
        session_id=session_id or f"s-{next(_ids)}",
        plan_id="plan-1" if patient_id == "pt-1" else f"plan-{patient_id}",
        patient_id=patient_id,
        phase=phase,
        sequence=sequence,
        starts_at=start,
        ends_at=start + timedelta(minutes=minutes),
        room_id=room_id,
        therapist_id=therapist_id,
        prescriber_id=prescriber_id,
        status=status,
    )


def prep_done(n: int = 2) -> list[model.Slot]:
    return [
        slot(P, at(day, week=-1), status=model.SessionStatus.COMPLETED, sequence=day + 1)
        for day in range(n)
    ]


def dosing(start: datetime, route: Route = Route.IV, **kw: object) -> model.Slot:
    minutes = DOSING_MINUTES.get(route, 180)
    return slot(D, start, minutes, prescriber_id="rx-ada", **kw)  # type: ignore[arg-type]


def ctx(
    the_plan: model.PlanInfo | None = None,
    *,
    sessions: Sequence[model.Slot] = (),
    consents: dict[ConsentScope, bool] | None = None,
    holds: Sequence[model.Hold] = (),
    deadlines: Sequence[model.Deadline] = (),
    site: model.SiteInfo = SITE,
    with_prep: bool = True,
) -> BookingContext:
    all_sessions = [*(prep_done() if with_prep else []), *sessions]
    return BookingContext(
        plan=the_plan or plan(),
        site=site,
        consents=CONSENTED if consents is None else consents,
        holds=holds,
        patient_sessions=[s for s in all_sessions if s.patient_id == "pt-1"],
        overlapping=[s for s in all_sessions if s.live],
        deadlines=deadlines,
    )


def propose(
    phase: Phase,
    start: datetime,
    minutes: int | None = None,
    *,
    route: Route = Route.IV,
    room_id: str = "room-a1",
    room_site_id: str = "site-a",
    therapist: model.StaffMember = TH,
    prescriber: model.StaffMember | None = RX,
    replaces: str | None = None,
) -> Proposal:
    if minutes is None:
        minutes = DOSING_MINUTES.get(route, 180) if phase is D else 60
    return Proposal(
        phase=phase,
        starts_at=start,
        ends_at=start + timedelta(minutes=minutes),
        room_id=room_id,
        room_site_id=room_site_id,
        therapist=therapist,
        prescriber=prescriber if phase is D else None,
        replaces=replaces,
    )


def check(p: Proposal, c: BookingContext, rules: SchedulingRules = RULES) -> model.Violation | None:
    return check_booking(p, c, rules)


def rule(p: Proposal, c: BookingContext, rules: SchedulingRules = RULES) -> str | None:
    violation = check(p, c, rules)
    return violation.rule_id if violation else None


def refused_by(
    rule_id: str, p: Proposal, c: BookingContext, rules: SchedulingRules = RULES
) -> model.Violation:
    """The violation `p` meets in `c`, which must be `rule_id`'s (for its message)."""
    violation = check(p, c, rules)
    assert violation is not None
    assert violation.rule_id == rule_id, violation
    return violation


# -- SCH-PLAN-1 ------------------------------------------------------------------------------


def test_SCH_PLAN_1_active_plan_accepted() -> None:
    assert rule(propose(P, at(0)), ctx()) is None


def test_SCH_PLAN_1_plan_awaiting_care_team_rejected() -> None:
    violation = refused_by(
        "SCH-PLAN-1", propose(P, at(0)), ctx(plan(status=model.PlanStatus.AWAITING_CARE_TEAM))
    )
    assert "no care team" in violation.message


@pytest.mark.parametrize("phase", [P, D, I])
def test_SCH_PLAN_1_suspended_plan_rejects_bookings(phase: Phase) -> None:
    dosed = [dosing(at(0, week=-1), status=model.SessionStatus.COMPLETED)]
    violation = refused_by(
        "SCH-PLAN-1",
        propose(phase, at(2)),
        ctx(plan(status=model.PlanStatus.SUSPENDED), sessions=dosed),
    )
    assert "suspended after an ineligible screening on 2026-12-28" in violation.message


def test_SCH_PLAN_1_suspended_plan_still_takes_the_integration_it_owes() -> None:
    done = dosing(at(0, week=-1), status=model.SessionStatus.COMPLETED)
    owed = model.Deadline(done.session_id, at(3, week=-1), "th-ben", model.DeadlineStatus.OPEN)
    suspended = plan(status=model.PlanStatus.SUSPENDED)
    assert rule(propose(I, at(1)), ctx(suspended, sessions=[done], deadlines=[owed])) is None
    met = model.Deadline(done.session_id, at(3, week=-1), "th-ben", model.DeadlineStatus.MET)
    assert rule(propose(I, at(1)), ctx(suspended, sessions=[done], deadlines=[met])) == (
        "SCH-PLAN-1"
    )


# -- SCH-CONSENT-1 ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("consents", "words"),
    [
        ({}, "no treatment consent on file"),
        ({ConsentScope.DATA_SHARING: True}, "no treatment consent on file"),
        ({ConsentScope.TREATMENT: False}, "withdrawn treatment consent"),
    ],
    ids=["none", "only data sharing", "withdrawn"],
)
def test_SCH_CONSENT_1_without_granted_treatment_consent_rejected(
    consents: dict[ConsentScope, bool], words: str
) -> None:
    violation = refused_by("SCH-CONSENT-1", propose(P, at(0)), ctx(consents=consents))
    assert words in violation.message


def test_SCH_CONSENT_1_granted_treatment_consent_accepted() -> None:
    assert rule(propose(P, at(0)), ctx(consents={ConsentScope.TREATMENT: True})) is None


# -- SCH-SITE-1 --------------------------------------------------------------------------------


def test_SCH_SITE_1_room_at_another_site_rejected() -> None:
    violation = check(propose(P, at(0), room_id="room-b1", room_site_id="site-b"), ctx())
    assert violation == model.Violation(
        "SCH-SITE-1", "room room-b1 is at site-b, but the patient is treated at site-a"
    )


def test_SCH_SITE_1_therapist_of_another_site_rejected() -> None:
    far = model.StaffMember("th-bea", Role.THERAPIST, ("site-b",))
    violation = refused_by("SCH-SITE-1", propose(P, at(0), therapist=far), ctx())
    assert "th-bea does not work at site-a" in violation.message


def test_SCH_SITE_1_prescriber_of_another_site_rejected() -> None:
    far = model.StaffMember("rx-bo", Role.PRESCRIBER, ("site-b",))
    assert rule(propose(D, at(0), prescriber=far), ctx()) == "SCH-SITE-1"


def test_SCH_SITE_1_clinician_working_at_several_sites_accepted() -> None:
    both = model.StaffMember("th-bea", Role.THERAPIST, ("site-b", "site-a"))
    assert rule(propose(P, at(0), therapist=both), ctx()) is None


# -- KAP-3 and SPR-SCH-4 -----------------------------------------------------------------------


def test_KAP_3_dosing_without_a_prescriber_rejected() -> None:
    violation = refused_by("KAP-3", propose(D, at(0), prescriber=None), ctx())
    assert "needs a prescriber" in violation.message


def test_KAP_3_dosing_with_prescriber_therapist_and_room_accepted() -> None:
    assert rule(propose(D, at(0)), ctx()) is None


@pytest.mark.parametrize("phase", [P, I])
def test_KAP_3_therapy_sessions_need_no_prescriber(phase: Phase) -> None:
    dosed = [dosing(at(0, week=-1), status=model.SessionStatus.COMPLETED)]
    assert rule(propose(phase, at(0), prescriber=None), ctx(sessions=dosed)) is None


@pytest.mark.parametrize("route", [Route.IV, Route.IM, Route.SUBLINGUAL, Route.ORAL])
def test_KAP_3_ketamine_chair_time_2h59_rejected(route: Route) -> None:
    violation = refused_by("KAP-3", propose(D, at(0), 179, route=route), ctx(plan(route)))
    assert "at least 3 h of chair time; this one has 2 h 59 min" in violation.message


@pytest.mark.parametrize("route", [Route.IV, Route.IM, Route.SUBLINGUAL, Route.ORAL])
def test_KAP_3_ketamine_chair_time_3h_accepted(route: Route) -> None:
    assert rule(propose(D, at(0), 180, route=route), ctx(plan(route))) is None


def test_SPR_SCH_4_esketamine_chair_time_1h59_rejected() -> None:
    esk = plan(Route.INTRANASAL_ESKETAMINE)
    violation = check(propose(D, at(0), 119, route=Route.INTRANASAL_ESKETAMINE), ctx(esk))
    assert violation == model.Violation(
        "SPR-SCH-4",
        "an esketamine dosing session must reserve at least 2 h of chair time; "
        "this one has 1 h 59 min",
    )


def test_SPR_SCH_4_esketamine_chair_time_2h_accepted() -> None:
    esk = plan(Route.INTRANASAL_ESKETAMINE)
    assert rule(propose(D, at(0), 120, route=Route.INTRANASAL_ESKETAMINE), ctx(esk)) is None


def test_SPR_SCH_4_chair_time_is_configurable() -> None:
    esk = plan(Route.INTRANASAL_ESKETAMINE)
    rules = SchedulingRules(esketamine_min_chair_minutes=150)
    p = propose(D, at(0), 149, route=Route.INTRANASAL_ESKETAMINE)
    assert rule(p, ctx(esk), rules) == "SPR-SCH-4"


# -- KAP-2 -------------------------------------------------------------------------------------


def test_KAP_2_integration_with_another_therapist_rejected() -> None:
    dosed = [dosing(at(0), status=model.SessionStatus.COMPLETED)]
    violation = refused_by("KAP-2", propose(I, at(1), therapist=TH_CY), ctx(sessions=dosed))
    assert "own therapist th-ben" in violation.message


def test_KAP_2_integration_with_the_plan_therapist_accepted() -> None:
    dosed = [dosing(at(0), status=model.SessionStatus.COMPLETED)]
    assert rule(propose(I, at(1)), ctx(sessions=dosed)) is None


def test_KAP_2_preparation_may_be_with_a_covering_therapist() -> None:
    assert rule(propose(P, at(1), therapist=TH_CY), ctx()) is None


# -- SPR-ENR-1 and SPR-CERT-1 ------------------------------------------------------------------

ESK = plan(Route.INTRANASAL_ESKETAMINE)


def esk_dose(start: datetime) -> Proposal:
    return propose(D, start, route=Route.INTRANASAL_ESKETAMINE)


@pytest.mark.parametrize(
    ("rems", "words"),
    [(None, "is not on file"), (False, "was withdrawn")],
    ids=["not enrolled", "withdrawn"],
)
def test_SPR_ENR_1_esketamine_dosing_without_rems_enrollment_rejected(
    rems: bool | None, words: str
) -> None:
    consents = {ConsentScope.TREATMENT: True}
    if rems is not None:
        consents[ConsentScope.REMS_ENROLLMENT] = rems
    violation = refused_by("SPR-ENR-1", esk_dose(at(0)), ctx(ESK, consents=consents))
    assert words in violation.message


def test_SPR_ENR_1_enrolled_patient_accepted() -> None:
    assert rule(esk_dose(at(0)), ctx(ESK)) is None


def test_SPR_ENR_1_does_not_apply_to_ketamine_or_to_esketamine_preparation() -> None:
    treatment_only = {ConsentScope.TREATMENT: True}
    assert rule(propose(D, at(0)), ctx(plan(Route.IV), consents=treatment_only)) is None
    assert rule(propose(P, at(0)), ctx(ESK, consents=treatment_only)) is None


def test_SPR_CERT_1_certification_expired_yesterday_rejected() -> None:
    start = at(2)  # Wednesday 6 January 2027
    site = model.SiteInfo("site-a", "America/New_York", date(2027, 1, 5))
    violation = check(esk_dose(start), ctx(ESK, site=site))
    assert violation == model.Violation(
        "SPR-CERT-1",
        "the REMS certification of site-a is valid until 2027-01-05; esketamine cannot be "
        "given there on 2027-01-06",
    )


def test_SPR_CERT_1_certification_valid_today_accepted() -> None:
    site = model.SiteInfo("site-a", "America/New_York", date(2027, 1, 6))
    assert rule(esk_dose(at(2)), ctx(ESK, site=site)) is None


def test_SPR_CERT_1_uses_the_site_local_date() -> None:
    # 21:00 in New York on the last valid day is already the next day in UTC.
    site = model.SiteInfo("site-a", "America/New_York", date(2027, 1, 6))
    late = at(2, "21:00")
    assert late.date() == date(2027, 1, 7)
    assert rule(esk_dose(late), ctx(ESK, site=site)) is None


def test_SPR_CERT_1_uncertified_site_rejected() -> None:
    violation = refused_by(
        "SPR-CERT-1", esk_dose(at(0)), ctx(ESK, site=model.SiteInfo("site-a", "America/New_York"))
    )
    assert "not a REMS-certified setting" in violation.message


def test_SPR_CERT_1_does_not_apply_to_ketamine() -> None:
    uncertified = model.SiteInfo("site-a", "America/New_York")
    assert rule(propose(D, at(0)), ctx(site=uncertified)) is None


# -- SCH-HOLD-1 --------------------------------------------------------------------------------

HOLD = model.Hold("h-1", "PHQ-9 item 9", 1.0, Severity.CRITICAL, at(4, "10:00", week=-1))


def test_SCH_HOLD_1_open_hold_blocks_dosing() -> None:
    violation = check(propose(D, at(0)), ctx(holds=[HOLD]))
    assert violation == model.Violation(
        "SCH-HOLD-1",
        "Dosing on hold: PHQ-9 item 9 answered 1 on 2027-01-01; a prescriber must clear the hold",
    )


def test_SCH_HOLD_1_counts_several_open_holds() -> None:
    second = model.Hold("h-2", "PHQ-9 item 9", 2.0, Severity.CRITICAL, at(0, "07:00"))
    violation = check(propose(D, at(0)), ctx(holds=[second, HOLD]))
    assert violation is not None
    assert violation.message.endswith("(2 open holds)")
    assert "answered 1 on 2027-01-01" in violation.message  # the oldest first


@pytest.mark.parametrize("phase", [P, I])
def test_SCH_HOLD_1_does_not_block_therapy_sessions(phase: Phase) -> None:
    dosed = [dosing(at(0, week=-1), status=model.SessionStatus.COMPLETED)]
    assert rule(propose(phase, at(0)), ctx(holds=[HOLD], sessions=dosed)) is None


# -- KAP-1 -------------------------------------------------------------------------------------


def test_KAP_1_first_dosing_with_1_completed_preparation_session_rejected() -> None:
    violation = check(propose(D, at(0)), ctx(sessions=prep_done(1), with_prep=False))
    assert violation == model.Violation(
        "KAP-1",
        "1 of 2 preparation sessions completed; complete 1 more before booking dosing",
    )


def test_KAP_1_first_dosing_with_2_completed_preparation_sessions_accepted() -> None:
    assert rule(propose(D, at(0)), ctx(sessions=prep_done(2), with_prep=False)) is None


def test_KAP_1_booked_or_cancelled_preparation_sessions_do_not_count() -> None:
    sessions = [
        *prep_done(1),
        slot(P, at(0, week=-1), status=model.SessionStatus.CANCELLED),
        slot(P, at(3, week=-1), status=model.SessionStatus.CHECKED_IN),
        slot(P, at(4)),
    ]
    assert rule(propose(D, at(1, week=1)), ctx(sessions=sessions, with_prep=False)) == "KAP-1"


@pytest.mark.parametrize(
    ("minimum", "done", "expected"), [(3, 2, "KAP-1"), (3, 3, None), (0, 0, None)]
)
def test_KAP_1_minimum_is_configurable(minimum: int, done: int, expected: str | None) -> None:
    rules = SchedulingRules(kap_min_preparation_sessions=minimum)
    c = ctx(sessions=prep_done(done), with_prep=False)
    assert rule(propose(D, at(0)), c, rules) == expected


def test_KAP_1_does_not_gate_preparation_or_integration() -> None:
    dosed = [dosing(at(0, week=-1), status=model.SessionStatus.COMPLETED)]
    assert rule(propose(P, at(0)), ctx(with_prep=False)) is None
    assert rule(propose(I, at(0)), ctx(sessions=dosed, with_prep=False)) is None


# -- SCH-COURSE-1 ------------------------------------------------------------------------------


def _iv_week(
    week: int, status: model.SessionStatus = model.SessionStatus.COMPLETED
) -> list[model.Slot]:
    return [dosing(at(day, week=week), status=status) for day in (0, 2, 4)]


def test_SCH_COURSE_1_seventh_iv_dosing_session_rejected() -> None:
    sessions = _iv_week(0) + _iv_week(1, model.SessionStatus.SCHEDULED)
    violation = check(propose(D, at(0, week=2)), ctx(sessions=sessions))
    assert violation == model.Violation(
        "SCH-COURSE-1",
        "all 6 dosing sessions of the ketamine_iv_induction course are already booked or done",
    )


def test_SCH_COURSE_1_sixth_iv_dosing_session_accepted() -> None:
    sessions = _iv_week(0) + _iv_week(1)[:2]
    assert rule(propose(D, at(0, week=2)), ctx(sessions=sessions)) is None


def test_SCH_COURSE_1_cancelled_dosing_sessions_do_not_count() -> None:
    sessions = (
        _iv_week(0)
        + _iv_week(1)[:2]
        + [dosing(at(4, week=1), status=model.SessionStatus.CANCELLED)]
    )
    assert rule(propose(D, at(0, week=2)), ctx(sessions=sessions)) is None


# -- SCH-INT-1 ---------------------------------------------------------------------------------


def test_SCH_INT_1_integration_before_any_dosing_rejected() -> None:
    violation = check(propose(I, at(0)), ctx())
    assert violation is not None
    assert violation.rule_id == "SCH-INT-1"


def test_SCH_INT_1_integration_starting_when_the_dosing_session_ends_accepted() -> None:
    dose = dosing(at(0, "09:00"))
    assert rule(propose(I, at(0, "12:00")), ctx(sessions=[dose])) is None


def test_SCH_INT_1_integration_starting_a_minute_before_the_dosing_ends_rejected() -> None:
    dose = dosing(at(0, "09:00"))
    assert rule(propose(I, at(0, "11:59")), ctx(sessions=[dose])) == "SCH-INT-1"


def test_SCH_INT_1_a_cancelled_dosing_session_is_not_enough() -> None:
    dose = dosing(at(0, "09:00"), status=model.SessionStatus.CANCELLED)
    assert rule(propose(I, at(1)), ctx(sessions=[dose])) == "SCH-INT-1"


# -- SPR-SCH-2 ---------------------------------------------------------------------------------


def esk_doses(*days_weeks: tuple[int, int]) -> list[model.Slot]:
    return [
        dosing(
            at(day, week=week), Route.INTRANASAL_ESKETAMINE, status=model.SessionStatus.COMPLETED
        )
        for day, week in days_weeks
    ]


def test_SPR_SCH_2_second_dosing_in_week_2_accepted() -> None:
    sessions = esk_doses((0, 0), (3, 0), (0, 1))
    assert rule(esk_dose(at(3, week=1)), ctx(ESK, sessions=sessions)) is None


def test_SPR_SCH_2_third_dosing_in_week_2_rejected() -> None:
    sessions = esk_doses((0, 0), (3, 0), (0, 1), (2, 1))
    violation = check(esk_dose(at(4, week=1)), ctx(ESK, sessions=sessions))
    assert violation == model.Violation(
        "SPR-SCH-2",
        "esketamine allows at most 2 dosing sessions a week in weeks 1-4 and 1 a week from "
        "week 5; treatment week 2 (2027-01-11 to 2027-01-17, counted from the first dosing "
        "session on 2027-01-04) would have 3",
    )


def test_SPR_SCH_2_second_dosing_in_week_4_accepted_and_third_rejected() -> None:
    sessions = esk_doses((0, 0), (3, 0), (0, 1), (3, 1), (0, 2), (3, 2), (0, 3))
    assert rule(esk_dose(at(3, week=3)), ctx(ESK, sessions=sessions)) is None
    more = [*sessions, *esk_doses((3, 3))]
    assert rule(esk_dose(at(4, week=3)), ctx(ESK, sessions=more)) == "SPR-SCH-2"


def test_SPR_SCH_2_first_dosing_in_week_5_accepted_and_second_rejected() -> None:
    induction = esk_doses(*[(d, w) for w in range(4) for d in (0, 3)])
    assert rule(esk_dose(at(0, week=4)), ctx(ESK, sessions=induction)) is None
    with_week_5 = [*induction, *esk_doses((0, 4))]
    violation = refused_by("SPR-SCH-2", esk_dose(at(3, week=4)), ctx(ESK, sessions=with_week_5))
    assert "treatment week 5" in violation.message


def test_SPR_SCH_2_weeks_count_from_the_first_dosing_session() -> None:
    # First dosing on a Thursday: the following Monday is already week 2.
    sessions = esk_doses((3, 0))
    assert rule(esk_dose(at(0, week=1)), ctx(ESK, sessions=sessions)) is None
    assert rule(esk_dose(at(4, week=0)), ctx(ESK, sessions=sessions)) is None
    full = esk_doses((3, 0), (4, 0))
    assert rule(esk_dose(at(2, week=0)), ctx(ESK, sessions=full)) == "SPR-SCH-2"


def test_SPR_SCH_2_an_earlier_first_session_renumbers_the_weeks_after_it() -> None:
    # Two a week in weeks 1-4: moving the start a week earlier would put 2 in week 5.
    induction = esk_doses(*[(d, w) for w in range(1, 5) for d in (0, 3)])
    violation = refused_by("SPR-SCH-2", esk_dose(at(0, week=0)), ctx(ESK, sessions=induction))
    assert "treatment week 5" in violation.message


def test_SPR_SCH_2_weeks_are_counted_in_site_local_days() -> None:
    sessions = esk_doses((0, 1), (3, 1), (0, 0))
    # Sunday 22:00 in New York is Monday in UTC, but still week 2 at the site.
    sunday_night = at(6, "22:00", week=1)
    assert sunday_night.weekday() == 0
    assert rule(esk_dose(sunday_night), ctx(ESK, sessions=sessions)) == "SPR-SCH-2"
    assert rule(esk_dose(at(0, "08:00", week=2)), ctx(ESK, sessions=sessions)) is None


def test_SPR_SCH_2_cancelled_sessions_do_not_count() -> None:
    sessions = [
        *esk_doses((0, 0), (0, 1)),
        dosing(at(2, week=1), Route.INTRANASAL_ESKETAMINE, status=model.SessionStatus.CANCELLED),
    ]
    assert rule(esk_dose(at(4, week=1)), ctx(ESK, sessions=sessions)) is None


def test_SPR_SCH_2_limits_are_configurable() -> None:
    rules = SchedulingRules(esketamine_induction_max_per_week=3)
    sessions = esk_doses((0, 0), (0, 1), (2, 1))
    assert rule(esk_dose(at(4, week=1)), ctx(ESK, sessions=sessions), rules) is None


# -- KET-SER-1 ---------------------------------------------------------------------------------


def test_KET_SER_1_third_iv_dosing_in_a_week_accepted() -> None:
    sessions = [dosing(at(0)), dosing(at(2))]
    assert rule(propose(D, at(4)), ctx(sessions=sessions)) is None


def test_KET_SER_1_fourth_iv_dosing_in_a_week_rejected() -> None:
    sessions = [dosing(at(0)), dosing(at(1)), dosing(at(2))]
    violation = refused_by("KET-SER-1", propose(D, at(4)), ctx(sessions=sessions))
    assert "at most 3 dosing sessions a week" in violation.message


def test_KET_SER_1_applies_to_im_too() -> None:
    im = plan(Route.IM)
    sessions = [dosing(at(0)), dosing(at(1)), dosing(at(2))]
    assert rule(propose(D, at(4), route=Route.IM), ctx(im, sessions=sessions)) == "KET-SER-1"


# -- SCH-ALT-1 ---------------------------------------------------------------------------------

KAP = plan(Route.SUBLINGUAL)


def test_SCH_ALT_1_second_kap_dosing_without_integration_in_between_rejected() -> None:
    violation = refused_by(
        "SCH-ALT-1", propose(D, at(3), route=Route.SUBLINGUAL), ctx(KAP, sessions=[dosing(at(0))])
    )
    assert "after dosing session 1" in violation.message


def test_SCH_ALT_1_second_kap_dosing_after_an_integration_session_accepted() -> None:
    sessions = [dosing(at(0)), slot(I, at(1))]
    assert rule(propose(D, at(3), route=Route.SUBLINGUAL), ctx(KAP, sessions=sessions)) is None


def test_SCH_ALT_1_first_kap_dosing_accepted() -> None:
    assert rule(propose(D, at(3), route=Route.SUBLINGUAL), ctx(KAP)) is None


def test_SCH_ALT_1_can_be_switched_off_and_does_not_apply_to_iv() -> None:
    off = SchedulingRules(kap_alternate_dosing_and_integration=False)
    p = propose(D, at(3), route=Route.SUBLINGUAL)
    assert rule(p, ctx(KAP, sessions=[dosing(at(0))]), off) is None
    assert rule(propose(D, at(3)), ctx(sessions=[dosing(at(0))])) is None


# -- SCH-HOURS-1 -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("start", "minutes", "expected"),
    [
        ("09:00", 60, None),
        ("08:59", 60, "SCH-HOURS-1"),
        ("16:00", 60, None),
        ("16:01", 60, "SCH-HOURS-1"),
    ],
    ids=["starts at opening", "a minute early", "ends at closing", "a minute late"],
)
def test_SCH_HOURS_1_working_hours_boundaries(
    start: str, minutes: int, expected: str | None
) -> None:
    assert rule(propose(P, at(0, start), minutes, therapist=TH_CY), ctx()) == expected


def test_SCH_HOURS_1_message_names_the_hours_in_the_site_time_zone() -> None:
    violation = check(propose(P, at(0, "17:30"), therapist=TH_CY), ctx())
    assert violation == model.Violation(
        "SCH-HOURS-1",
        "th-cy works 09:00-17:00 on Mondays (America/New_York); the session runs 17:30-18:30",
    )


def test_SCH_HOURS_1_a_day_off_is_rejected() -> None:
    violation = check(propose(P, at(5, "10:00"), therapist=TH_CY), ctx())
    assert violation == model.Violation("SCH-HOURS-1", "th-cy does not work on Saturdays")


def test_SCH_HOURS_1_hours_apply_to_the_prescriber_too() -> None:
    rx = model.StaffMember("rx-ada", Role.PRESCRIBER, ("site-a",), OFFICE_HOURS)
    assert rule(propose(D, at(0, "15:00"), prescriber=rx), ctx()) == "SCH-HOURS-1"
    assert rule(propose(D, at(0, "14:00"), prescriber=rx), ctx()) is None


def test_SCH_HOURS_1_clinicians_without_hours_are_not_restricted() -> None:
    assert rule(propose(P, at(6, "22:00")), ctx()) is None


# -- SCH-CONFLICT-* ----------------------------------------------------------------------------


def test_SCH_CONFLICT_PATIENT_overlap_by_a_minute_rejected() -> None:
    other = slot(P, at(0, "09:00"), room_id="room-a2", therapist_id="th-cy")
    violation = refused_by(
        "SCH-CONFLICT-PATIENT", propose(P, at(0, "09:59")), ctx(sessions=[other])
    )
    assert "preparation session 1 at Mon 04 Jan 2027 09:00 America/New_York-10:00" in (
        violation.message
    )


def test_SCH_CONFLICT_PATIENT_back_to_back_accepted() -> None:
    other = slot(P, at(0, "09:00"), room_id="room-a2", therapist_id="th-cy")
    assert rule(propose(P, at(0, "10:00")), ctx(sessions=[other])) is None


def test_SCH_CONFLICT_CLINICIAN_therapist_busy_with_another_patient_rejected() -> None:
    other = slot(P, at(0, "09:30"), patient_id="pt-2", room_id="room-a2")
    violation = refused_by(
        "SCH-CONFLICT-CLINICIAN", propose(P, at(0, "09:00")), ctx(sessions=[other])
    )
    assert violation.message.startswith("th-ben is already booked")


def test_SCH_CONFLICT_CLINICIAN_prescriber_busy_as_prescriber_elsewhere_rejected() -> None:
    other = slot(
        D,
        at(0, "08:00"),
        180,
        patient_id="pt-2",
        room_id="room-a2",
        therapist_id="th-cy",
        prescriber_id="rx-ada",
    )
    assert rule(propose(D, at(0, "10:00")), ctx(sessions=[other])) == "SCH-CONFLICT-CLINICIAN"
    assert rule(propose(D, at(0, "11:00")), ctx(sessions=[other])) is None


def test_SCH_CONFLICT_ROOM_room_taken_rejected() -> None:
    other = slot(P, at(0, "09:00"), patient_id="pt-2", therapist_id="th-cy")
    violation = refused_by("SCH-CONFLICT-ROOM", propose(P, at(0, "09:30")), ctx(sessions=[other]))
    assert violation.message == (
        "room room-a1 is already booked Mon 04 Jan 2027 09:00 America/New_York-10:00"
    )


def test_SCH_CONFLICT_ROOM_other_room_accepted() -> None:
    other = slot(P, at(0, "09:00"), patient_id="pt-2", therapist_id="th-cy")
    assert rule(propose(P, at(0, "09:30"), room_id="room-a2"), ctx(sessions=[other])) is None


def test_SCH_CONFLICT_cancelled_sessions_and_the_rescheduled_session_itself_do_not_clash() -> None:
    cancelled = slot(P, at(0, "09:00"), status=model.SessionStatus.CANCELLED)
    itself = slot(P, at(0, "09:00"), session_id="s-me")
    c = ctx(sessions=[cancelled, itself])
    assert rule(propose(P, at(0, "09:30"), replaces="s-me"), c) is None
    assert rule(propose(P, at(0, "09:30")), c) == "SCH-CONFLICT-PATIENT"


# -- order and sequence ------------------------------------------------------------------------


def test_the_most_fundamental_rule_is_reported_first() -> None:
    c = ctx(
        plan(status=model.PlanStatus.AWAITING_CARE_TEAM),
        consents={},
        holds=[HOLD],
        with_prep=False,
    )
    assert rule(propose(D, at(0), 30, prescriber=None), c) == "SCH-PLAN-1"
    c = ctx(consents={}, holds=[HOLD], with_prep=False)
    assert rule(propose(D, at(0), 30, prescriber=None), c) == "SCH-CONSENT-1"
    c = ctx(holds=[HOLD], with_prep=False)
    assert rule(propose(D, at(0), 30), c) == "SCH-HOLD-1"


def test_next_sequence_fills_the_lowest_free_number_of_the_phase() -> None:
    sessions = [
        slot(P, at(0), sequence=1, status=model.SessionStatus.COMPLETED),
        slot(P, at(1), sequence=2, status=model.SessionStatus.CANCELLED),
        slot(P, at(2), sequence=3),
        slot(D, at(3), sequence=1),
    ]
    assert next_sequence(sessions, P) == 2
    assert next_sequence(sessions, D) == 2
    assert next_sequence(sessions, I) == 1


# -- this turn: rules that match the clinic (issue 8, section 4) --------------------------------


def esk_slot(start: datetime, **kw: object) -> model.Slot:
    """Another patient's esketamine dosing session at site-a (its route known)."""
    fields: dict[str, object] = {
        "patient_id": "pt-2",
        "room_id": "room-a2",
        "therapist_id": "th-cy",
        "prescriber_id": "rx-ada",
    } | kw
    base = slot(D, start, 120, **fields)  # type: ignore[arg-type]
    return replace(base, route=Route.INTRANASAL_ESKETAMINE, site_id="site-a")


def test_SPR_SCH_2_treatment_weeks_count_from_the_first_dose_not_iso_weeks() -> None:
    # First dose Thursday 2027-01-07: treatment week 1 runs Thu-Wed, across two ISO weeks.
    sessions = esk_doses((3, 0), (0, 1))
    violation = refused_by("SPR-SCH-2", esk_dose(at(2, week=1)), ctx(ESK, sessions=sessions))
    assert "treatment week 1 (2027-01-07 to 2027-01-13" in violation.message
    # The next Thursday starts treatment week 2 (ISO would have said week 2 already on Monday).
    assert rule(esk_dose(at(3, week=1)), ctx(ESK, sessions=sessions)) is None


def test_KET_SER_1_counts_treatment_weeks_too() -> None:
    sessions = [dosing(at(3)), dosing(at(0, week=1)), dosing(at(1, week=1))]
    assert rule(propose(D, at(2, week=1)), ctx(sessions=sessions)) == "KET-SER-1"
    assert rule(propose(D, at(3, week=1)), ctx(sessions=sessions)) is None


def test_KAP_1_esketamine_needs_no_preparation_sessions_by_default() -> None:
    assert rule(esk_dose(at(0)), ctx(ESK, with_prep=False)) is None


@pytest.mark.parametrize("route", [Route.IV, Route.IM, Route.SUBLINGUAL, Route.ORAL])
def test_KAP_1_ketamine_protocols_still_need_two(route: Route) -> None:
    minutes = 180
    p = propose(D, at(0), minutes, route=route)
    assert rule(p, ctx(plan(route), with_prep=False)) == "KAP-1"
    assert rule(p, ctx(plan(route), with_prep=True)) is None


def test_KAP_1_esketamine_minimum_is_configurable_per_protocol() -> None:
    rules = SchedulingRules(esketamine_min_preparation_sessions=1, kap_min_preparation_sessions=0)
    violation = check(esk_dose(at(0)), ctx(ESK, with_prep=False), rules)
    assert violation == model.Violation(
        "KAP-1", "0 of 1 preparation sessions completed; complete 1 more before booking dosing"
    )
    assert rule(propose(D, at(0)), ctx(with_prep=False), rules) is None


def test_SPR_CERT_2_esketamine_dosing_without_a_prescriber_rejected() -> None:
    violation = refused_by("SPR-CERT-2", propose(D, at(0), 120, prescriber=None), ctx(ESK))
    assert "prescriber onsite" in violation.message


def test_SPR_CERT_2_one_prescriber_supervises_several_esketamine_chairs() -> None:
    others = [esk_slot(at(0, "09:00")), esk_slot(at(0, "09:30"), room_id="room-a3")]
    assert rule(esk_dose(at(0, "09:00")), ctx(ESK, sessions=others)) is None


def test_SPR_CERT_2_shared_supervision_is_only_for_esketamine_chairs() -> None:
    iv_chair = replace(esk_slot(at(0, "09:00")), route=Route.IV)
    assert rule(esk_dose(at(0, "09:00")), ctx(ESK, sessions=[iv_chair])) == (
        "SCH-CONFLICT-CLINICIAN"
    )
    # An IV dosing session does not share its prescriber with an esketamine chair either.
    iv_plan_dose = propose(D, at(0, "09:00"))
    assert rule(iv_plan_dose, ctx(sessions=[esk_slot(at(0, "09:00"))])) == (
        "SCH-CONFLICT-CLINICIAN"
    )


def test_SPR_CERT_2_the_prescriber_is_onsite_at_one_site_only() -> None:
    elsewhere = esk_slot(at(0, "09:00"), room_id="room-b1")
    elsewhere = replace(elsewhere, site_id="site-b")
    assert rule(esk_dose(at(0, "09:00")), ctx(ESK, sessions=[elsewhere])) == (
        "SCH-CONFLICT-CLINICIAN"
    )


def test_SPR_CERT_2_the_therapist_still_cannot_be_in_two_rooms() -> None:
    other = esk_slot(at(0, "09:00"), therapist_id="th-ben")
    violation = refused_by(
        "SCH-CONFLICT-CLINICIAN", esk_dose(at(0, "09:00")), ctx(ESK, sessions=[other])
    )
    assert violation.message.startswith("th-ben is already booked")


@pytest.mark.parametrize(("cap", "chairs", "expected"), [(2, 1, None), (2, 2, "x"), (1, 1, "x")])
def test_SPR_CERT_2_chairs_per_prescriber_cap_both_sides(
    cap: int, chairs: int, expected: str | None
) -> None:
    rules = SchedulingRules(esketamine_chairs_per_prescriber=cap)
    others = [esk_slot(at(0, "09:00"), room_id=f"room-x{n}") for n in range(chairs)]
    violation = check(esk_dose(at(0, "09:00")), ctx(ESK, sessions=others), rules)
    if expected is None:
        assert violation is None
    else:
        assert violation is not None
        assert violation.rule_id == "SCH-CONFLICT-CLINICIAN"
        assert f"already supervises {chairs} esketamine chair(s)" in violation.message


def test_SPR_SCH_4_back_to_back_esketamine_sessions_in_one_room_rejected() -> None:
    first = esk_slot(at(0, "09:00"), room_id="room-a1", prescriber_id="rx-other")
    violation = refused_by("SPR-SCH-4", esk_dose(at(0, "11:00")), ctx(ESK, sessions=[first]))
    assert "30 min before it starts for check-in and settling" in violation.message
    assert "start at Mon 04 Jan 2027 11:30 America/New_York or later" in violation.message


def test_SPR_SCH_4_chair_block_boundary_after_a_session() -> None:
    first = esk_slot(at(0, "09:00"), room_id="room-a1", prescriber_id="rx-other")
    assert rule(esk_dose(at(0, "11:29")), ctx(ESK, sessions=[first])) == "SPR-SCH-4"
    assert rule(esk_dose(at(0, "11:30")), ctx(ESK, sessions=[first])) is None


def test_SPR_SCH_4_chair_block_boundary_before_a_session() -> None:
    later = esk_slot(at(0, "11:00"), room_id="room-a1", prescriber_id="rx-other")
    # A preparation session in that room must end by 10:30, when check-in starts.
    violation = refused_by("SPR-SCH-4", propose(P, at(0, "09:31")), ctx(ESK, sessions=[later]))
    assert "end by Mon 04 Jan 2027 10:30 America/New_York" in violation.message
    assert rule(propose(P, at(0, "09:30")), ctx(ESK, sessions=[later])) is None


def test_SPR_SCH_4_check_in_time_is_configurable() -> None:
    rules = SchedulingRules(esketamine_check_in_minutes=0)
    first = esk_slot(at(0, "09:00"), room_id="room-a1", prescriber_id="rx-other")
    assert rule(esk_dose(at(0, "11:00")), ctx(ESK, sessions=[first]), rules) is None
