"""A session's life after booking, pure (kap_scheduling.domain.lifecycle and
.guidance): check-in window and gates (SPR-PRE-1/2/8, KET-PRE-1/3), completion
(SCH-DIS-1), phases, KAP-2 deadlines and the coordinator's next action."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest

from kap_scheduling.domain import model
from kap_scheduling.domain.guidance import PlanState, next_action, warnings
from kap_scheduling.domain.lifecycle import (
    check_check_in,
    check_complete,
    deadline_met_by,
    integration_due_by,
    phase_after_check_in,
    phase_after_completion,
)
from kap_scheduling.domain.protocols import protocol_for
from kap_scheduling.domain.rules import SchedulingRules
from kap_shared.events.enums import ConsentScope, Phase, Route, Severity

NY = ZoneInfo("America/New_York")
MONDAY = date(2027, 1, 4)
SITE = model.SiteInfo("site-a", "America/New_York", date(2027, 12, 31))
RULES = SchedulingRules()
CONSENTED = {ConsentScope.TREATMENT: True, ConsentScope.REMS_ENROLLMENT: True}
P, D, I = Phase.PREPARATION, Phase.DOSING, Phase.INTEGRATION  # noqa: E741
START = datetime.combine(MONDAY, time(9), NY).astimezone(UTC)
HOLD = model.Hold("h-1", "PHQ-9 item 9", 1.0, Severity.CRITICAL, START - timedelta(days=3))


def plan(
    route: Route = Route.IV,
    *,
    status: model.PlanStatus = model.PlanStatus.ACTIVE,
    phase: Phase | None = Phase.PREPARATION,
    planned: int = 6,
) -> model.PlanInfo:
    return model.PlanInfo(
        "plan-1",
        "pt-1",
        "site-a",
        status,
        route,
        protocol_for(route).name,
        planned,
        phase,
        "rx-ada",
        "th-ben",
        START - timedelta(days=1) if status is model.PlanStatus.SUSPENDED else None,
    )


def slot(
    phase: Phase = D,
    start: datetime = START,
    *,
    status: model.SessionStatus = model.SessionStatus.SCHEDULED,
    sequence: int = 1,
    session_id: str = "s-1",
    discharged: bool = False,
    minutes: int = 180,
) -> model.Slot:
    return model.Slot(
        session_id,
        "plan-1",
        "pt-1",
        phase,
        sequence,
        start,
        start + timedelta(minutes=minutes),
        "room-a1",
        "th-ben",
        "rx-ada" if phase is D else None,
        status,
        discharge_cleared_at=START + timedelta(hours=3) if discharged else None,
    )


def fasted(
    now: datetime, *, food: float = 8 * 60, liquid: float = 3 * 60, ride: bool = True
) -> model.Attestation:
    return model.Attestation(now - timedelta(minutes=food), now - timedelta(minutes=liquid), ride)


def check_in(
    session: model.Slot | None = None,
    *,
    now: datetime | None = None,
    attestation: model.Attestation | None = None,
    the_plan: model.PlanInfo | None = None,
    consents: dict[ConsentScope, bool] | None = None,
    holds: Sequence[model.Hold] = (),
    site: model.SiteInfo = SITE,
    rules: SchedulingRules = RULES,
) -> model.Violation | None:
    now = now or START - timedelta(minutes=10)
    return check_check_in(
        session or slot(),
        plan=the_plan or plan(),
        site=site,
        consents=CONSENTED if consents is None else consents,
        holds=holds,
        attestation=attestation or fasted(now),
        now=now,
        rules=rules,
    )


def rule_of(violation: model.Violation | None) -> str | None:
    return violation.rule_id if violation else None


# -- SCH-CHECKIN-1 and SCH-STATE-1 -------------------------------------------------------------


@pytest.mark.parametrize(
    ("offset", "expected"),
    [
        (-61, "SCH-CHECKIN-1"),
        (-60, None),
        (0, None),
        (30, None),
        (31, "SCH-CHECKIN-1"),
    ],
    ids=["61 min early", "60 min early", "on time", "30 min late", "31 min late"],
)
def test_SCH_CHECKIN_1_window_boundaries(offset: int, expected: str | None) -> None:
    now = START + timedelta(minutes=offset)
    assert rule_of(check_in(slot(P), now=now)) == expected


def test_SCH_CHECKIN_1_message_says_when_it_opens() -> None:
    violation = check_in(slot(P), now=START - timedelta(hours=2))
    assert violation == model.Violation(
        "SCH-CHECKIN-1",
        "check-in opens at Mon 04 Jan 2027 08:00 America/New_York (1 h before to 30 min "
        "after the session starts)",
    )


def test_SCH_CHECKIN_1_window_is_configurable() -> None:
    wide = SchedulingRules(check_in_opens_minutes_before=3 * 24 * 60)
    assert check_in(slot(P), now=START - timedelta(days=2), rules=wide) is None


@pytest.mark.parametrize(
    "status",
    [model.SessionStatus.CHECKED_IN, model.SessionStatus.COMPLETED, model.SessionStatus.CANCELLED],
)
def test_SCH_STATE_1_only_a_scheduled_session_checks_in(status: model.SessionStatus) -> None:
    violation = check_in(slot(P, status=status))
    assert violation is not None
    assert violation.rule_id == "SCH-STATE-1"
    assert "cannot be checked in" in violation.message


# -- gates that can change after booking -------------------------------------------------------


def test_SCH_CONSENT_1_withdrawn_consent_blocks_any_check_in() -> None:
    withdrawn = {ConsentScope.TREATMENT: False}
    assert rule_of(check_in(slot(P), consents=withdrawn)) == "SCH-CONSENT-1"
    assert rule_of(check_in(consents=withdrawn)) == "SCH-CONSENT-1"


def test_SCH_HOLD_1_open_hold_blocks_dosing_check_in_but_not_therapy() -> None:
    assert rule_of(check_in(holds=[HOLD])) == "SCH-HOLD-1"
    assert check_in(slot(I), holds=[HOLD]) is None


def test_SCH_PLAN_1_suspended_plan_blocks_dosing_check_in() -> None:
    assert rule_of(check_in(the_plan=plan(status=model.PlanStatus.SUSPENDED))) == "SCH-PLAN-1"


def test_SPR_ENR_1_and_SPR_CERT_1_are_checked_again_at_check_in() -> None:
    esk = plan(Route.INTRANASAL_ESKETAMINE)
    session = slot(minutes=120)
    assert rule_of(check_in(session, the_plan=esk, consents={ConsentScope.TREATMENT: True})) == (
        "SPR-ENR-1"
    )
    lapsed = model.SiteInfo("site-a", "America/New_York", MONDAY - timedelta(days=1))
    assert rule_of(check_in(session, the_plan=esk, site=lapsed)) == "SPR-CERT-1"
    valid_today = model.SiteInfo("site-a", "America/New_York", MONDAY)
    assert check_in(session, the_plan=esk, site=valid_today) is None


# -- SPR-PRE-1/2/8 (esketamine) ----------------------------------------------------------------

ESK = plan(Route.INTRANASAL_ESKETAMINE)
NOW = START - timedelta(minutes=10)


def esk_check_in(**fasting: float | bool) -> model.Violation | None:
    return check_in(slot(minutes=120), the_plan=ESK, attestation=fasted(NOW, **fasting))  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("fasting", "violation"),
    [
        (
            {"food": 119},
            model.Violation(
                "SPR-PRE-1",
                "no food for at least 2 h before esketamine; the patient last ate 1 h 59 min ago",
            ),
        ),
        (
            {"liquid": 29},
            model.Violation(
                "SPR-PRE-2",
                "no liquids for at least 30 min before esketamine; the patient last drank 29 min "
                "ago",
            ),
        ),
    ],
    ids=["SPR-PRE-1 food 1 h 59 min before", "SPR-PRE-2 liquids 29 min before"],
)
def test_SPR_PRE_1_2_fasting_a_minute_short_rejected(
    fasting: dict[str, float], violation: model.Violation
) -> None:
    assert esk_check_in(**fasting) == violation


@pytest.mark.parametrize(
    "fasting",
    [{"food": 120}, {"liquid": 30}],
    ids=["SPR-PRE-1 food 2 h before", "SPR-PRE-2 liquids 30 min before"],
)
def test_SPR_PRE_1_2_fasting_exactly_long_enough_accepted(fasting: dict[str, float]) -> None:
    assert esk_check_in(**fasting) is None


def test_SPR_PRE_1_rulebook_examples_t90_rejected_t150_accepted() -> None:
    assert rule_of(esk_check_in(food=90)) == "SPR-PRE-1"
    assert esk_check_in(food=150) is None


def test_SPR_PRE_8_esketamine_without_transport_rejected() -> None:
    violation = esk_check_in(ride=False)
    assert violation is not None
    assert violation.rule_id == "SPR-PRE-8"
    assert "arrange transport home" in violation.message


# -- KET-PRE-1/3 (IV/IM/KAP ketamine) ----------------------------------------------------------


@pytest.mark.parametrize("route", [Route.IV, Route.IM, Route.SUBLINGUAL, Route.ORAL])
def test_KET_PRE_1_solids_3h59_before_rejected_4h_accepted(route: Route) -> None:
    refused = check_in(the_plan=plan(route), attestation=fasted(NOW, food=239))
    assert refused == model.Violation(
        "KET-PRE-1",
        "no solid food for at least 4 h before ketamine; the patient last ate 3 h 59 min ago",
    )
    assert check_in(the_plan=plan(route), attestation=fasted(NOW, food=240)) is None


def test_KET_PRE_1_clear_liquids_1h59_before_rejected_2h_accepted() -> None:
    refused = check_in(attestation=fasted(NOW, liquid=119))
    assert refused is not None
    assert refused.rule_id == "KET-PRE-1"
    assert "clear liquids for at least 2 h" in refused.message
    assert check_in(attestation=fasted(NOW, liquid=120)) is None


def test_KET_PRE_1_esketamine_thresholds_do_not_apply_to_ketamine() -> None:
    # 2 h 30 min without food is enough for esketamine, not for IV ketamine.
    assert rule_of(check_in(attestation=fasted(NOW, food=150))) == "KET-PRE-1"


def test_KET_PRE_1_thresholds_are_configurable() -> None:
    relaxed = SchedulingRules(ketamine_solids_fast_minutes=120)
    assert check_in(attestation=fasted(NOW, food=150), rules=relaxed) is None


def test_KET_PRE_3_ketamine_without_escort_rejected() -> None:
    violation = check_in(attestation=fasted(NOW, ride=False))
    assert violation is not None
    assert violation.rule_id == "KET-PRE-3"
    assert "escort" in violation.message


def test_therapy_sessions_need_no_fasting_or_transport() -> None:
    assert check_in(slot(P), attestation=model.Attestation()) is None


# -- SCH-DIS-1 and completion state ------------------------------------------------------------


def test_SCH_DIS_1_dosing_without_discharge_cleared_rejected() -> None:
    violation = check_complete(slot(status=model.SessionStatus.CHECKED_IN))
    assert violation is not None
    assert violation.rule_id == "SCH-DIS-1"


def test_SCH_DIS_1_dosing_with_discharge_cleared_accepted() -> None:
    assert check_complete(slot(status=model.SessionStatus.CHECKED_IN, discharged=True)) is None


def test_SCH_DIS_1_does_not_apply_to_therapy_sessions() -> None:
    assert check_complete(slot(P, status=model.SessionStatus.CHECKED_IN)) is None


@pytest.mark.parametrize(
    ("status", "words"),
    [
        (model.SessionStatus.SCHEDULED, "before the patient is checked in"),
        (model.SessionStatus.COMPLETED, "the session is completed; it cannot be completed"),
        (model.SessionStatus.CANCELLED, "the session is cancelled; it cannot be completed"),
    ],
)
def test_SCH_STATE_1_only_a_checked_in_session_completes(
    status: model.SessionStatus, words: str
) -> None:
    violation = check_complete(slot(P, status=status, discharged=True))
    assert violation is not None
    assert violation.rule_id == "SCH-STATE-1"
    assert words in violation.message


# -- phases ------------------------------------------------------------------------------------


def test_first_dosing_check_in_advances_preparation_to_dosing() -> None:
    assert phase_after_check_in(plan(phase=P), slot(D)) is D
    assert phase_after_check_in(plan(phase=D), slot(D)) is None
    assert phase_after_check_in(plan(phase=P), slot(P)) is None


def test_last_planned_dosing_completion_advances_dosing_to_integration() -> None:
    assert phase_after_completion(plan(phase=D), slot(D), completed_dosing=6) is I
    assert phase_after_completion(plan(phase=D), slot(D), completed_dosing=5) is None
    assert phase_after_completion(plan(phase=D), slot(I), completed_dosing=6) is None


# -- KAP-2 deadlines ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("route", "hours"),
    [
        (Route.IV, 72),
        (Route.IM, 72),
        (Route.INTRANASAL_ESKETAMINE, 72),
        (Route.SUBLINGUAL, 72),
        (Route.ORAL, 168),
    ],
)
def test_KAP_2_integration_due_within_72h_or_7_days_for_oral(route: Route, hours: int) -> None:
    assert integration_due_by(route, START, RULES) == START + timedelta(hours=hours)


def test_KAP_2_deadline_hours_are_configurable() -> None:
    rules = SchedulingRules(integration_due_hours=48)
    assert integration_due_by(Route.IV, START, rules) == START + timedelta(hours=48)


def test_KAP_2_an_integration_session_meets_the_oldest_unmet_deadline_of_its_therapist() -> None:
    deadlines = [
        model.Deadline("d-2", START + timedelta(days=5), "th-ben", model.DeadlineStatus.OPEN),
        model.Deadline("d-0", START + timedelta(days=1), "th-ben", model.DeadlineStatus.MET),
        model.Deadline("d-1", START + timedelta(days=2), "th-ben", model.DeadlineStatus.OVERDUE),
        model.Deadline("d-x", START, "th-cy", model.DeadlineStatus.OPEN),
    ]
    met = deadline_met_by(deadlines, "th-ben")
    assert met is not None
    assert met.dosing_session_id == "d-1"
    assert deadline_met_by(deadlines[:2], "th-zed") is None


# -- next_action -------------------------------------------------------------------------------

TODAY = MONDAY - timedelta(days=7)


def state(
    the_plan: model.PlanInfo | None = None,
    *,
    sessions: Sequence[model.Slot] = (),
    consents: dict[ConsentScope, bool] | None = None,
    deadlines: Sequence[model.Deadline] = (),
) -> PlanState:
    """The plan at SITE without holds; a hold or another site via `dataclasses.replace`."""
    return PlanState(
        plan=the_plan or plan(),
        site=SITE,
        sessions=sessions,
        patient_sessions=sessions,
        consents=CONSENTED if consents is None else consents,
        holds=(),
        deadlines=deadlines,
    )


def say(s: PlanState, rules: SchedulingRules = RULES) -> str:
    return next_action(s, rules, TODAY)


def done(phase: Phase, day: int, sequence: int) -> model.Slot:
    return slot(
        phase,
        START + timedelta(days=day),
        status=model.SessionStatus.COMPLETED,
        sequence=sequence,
        session_id=f"{phase.value}-{sequence}",
    )


def test_next_action_without_a_care_team() -> None:
    s = state(plan(status=model.PlanStatus.AWAITING_CARE_TEAM, phase=None))
    assert say(s) == "Add a prescriber and a therapist at site-a so the plan can start."


def test_next_action_suspended() -> None:
    s = state(plan(status=model.PlanStatus.SUSPENDED))
    assert say(s) == (
        "Plan suspended after an ineligible screening on 2027-01-03; a prescriber must "
        "re-screen the patient before sessions can be booked."
    )


def test_next_action_on_hold_names_the_concern_and_who_clears_it() -> None:
    assert say(replace(state(), holds=[HOLD])) == (
        "Dosing on hold: PHQ-9 item 9 answered 1 on 2027-01-01; a prescriber must clear the "
        "hold. Preparation and integration sessions can still be booked."
    )


def test_next_action_asks_for_consent() -> None:
    assert say(state(consents={})) == (
        "The patient has no treatment consent on file; record it at intake first."
    )


def test_next_action_books_preparation_sessions() -> None:
    assert say(state()) == "Book preparation session 1 of 2 with th-ben."
    one = [done(P, -7, 1)]
    assert say(state(sessions=one)) == "Book preparation session 2 of 2 with th-ben."


def test_next_action_completes_booked_preparation() -> None:
    sessions = [done(P, -7, 1), slot(P, START, sequence=2, session_id="p-2", minutes=60)]
    assert say(state(sessions=sessions)) == (
        "Complete preparation session 2 of 2 (Mon 04 Jan 2027 09:00 America/New_York with "
        "th-ben) before dosing can be booked."
    )


def test_next_action_books_dosing_after_preparation() -> None:
    sessions = [done(P, -7, 1), done(P, -6, 2)]
    assert say(state(sessions=sessions)) == "Book dosing session 1 of 6 with rx-ada and th-ben."


def test_next_action_names_the_missing_rems_prerequisite_for_esketamine() -> None:
    esk = plan(Route.INTRANASAL_ESKETAMINE, planned=12)
    prepared = [done(P, -7, 1), done(P, -6, 2)]
    s = state(esk, sessions=prepared, consents={ConsentScope.TREATMENT: True})
    assert say(s).startswith(
        "Esketamine can only be given to a patient enrolled in the Spravato REMS"
    )
    lapsed = model.SiteInfo("site-a", "America/New_York", TODAY - timedelta(days=1))
    assert say(replace(state(esk, sessions=prepared), site=lapsed)).startswith(
        "The REMS certification of site-a is valid until"
    )


@pytest.mark.parametrize(
    ("status", "action"),
    [
        (
            model.DeadlineStatus.OPEN,
            "Book the integration session after dosing session 1 with th-ben by "
            "Thu 07 Jan 2027 09:00 America/New_York.",
        ),
        (
            model.DeadlineStatus.OVERDUE,
            "Integration after dosing session 1 is overdue (was due by Thu 07 Jan 2027 09:00 "
            "America/New_York); book it with th-ben now.",
        ),
    ],
    ids=["owed", "overdue"],
)
def test_next_action_books_the_owed_integration_session(
    status: model.DeadlineStatus, action: str
) -> None:
    dosed = [done(P, -7, 1), done(P, -6, 2), done(D, 0, 1)]
    deadline = model.Deadline("dosing-1", START + timedelta(days=3), "th-ben", status)
    assert say(state(plan(phase=D), sessions=dosed, deadlines=[deadline])) == action


def test_next_action_completes_a_booked_integration_session() -> None:
    booked = slot(I, START + timedelta(days=1), sequence=1, session_id="i-1", minutes=60)
    dosed = [done(P, -7, 1), done(P, -6, 2), done(D, 0, 1), booked]
    owed = model.Deadline(
        "dosing-1", START + timedelta(days=3), "th-ben", model.DeadlineStatus.OPEN
    )
    assert say(state(plan(phase=D), sessions=dosed, deadlines=[owed])).startswith(
        "Complete the integration session after dosing session 1 with th-ben, booked for "
        "Tue 05 Jan 2027 09:00"
    )


def test_next_action_in_dosing_mentions_the_next_booked_dosing_session() -> None:
    sessions = [done(P, -7, 1), done(P, -6, 2), slot(D, START + timedelta(days=2), sequence=1)]
    assert say(state(plan(phase=D), sessions=sessions)) == (
        "Book dosing session 2 of 6 with rx-ada and th-ben (next: dosing session 1 on "
        "Wed 06 Jan 2027 09:00 America/New_York)."
    )


def test_next_action_kap_alternates_dosing_and_integration() -> None:
    kap = plan(Route.SUBLINGUAL, phase=D)
    sessions = [done(P, -7, 1), done(P, -6, 2), slot(D, START, sequence=1)]
    assert say(state(kap, sessions=sessions)) == (
        "Book the integration session after dosing session 1 with th-ben; KAP dosing and "
        "integration sessions alternate."
    )


def test_next_action_when_the_course_is_complete() -> None:
    sessions = [done(P, -7, 1), done(P, -6, 2)] + [done(D, n, n + 1) for n in range(6)]
    assert say(state(plan(phase=I), sessions=sessions)) == (
        "Dosing course complete (6 of 6 dosing sessions); continue integration with th-ben "
        "as needed."
    )


# -- soft warnings: SPR-SCH-3 and KAP-4 -----------------------------------------------------------


def dosed_at(*offsets_minutes: float) -> list[model.Slot]:
    return [
        slot(D, START + timedelta(minutes=m), sequence=n + 1, session_id=f"d-{n}")
        for n, m in enumerate(offsets_minutes)
    ]


def test_SPR_SCH_3_esketamine_doses_47h59_apart_warn() -> None:
    esk = plan(Route.INTRANASAL_ESKETAMINE, planned=12)
    found = warnings(state(esk, sessions=dosed_at(0, 47 * 60 + 59)), RULES)
    assert found == [
        model.Violation(
            "SPR-SCH-3",
            "dosing sessions 1 and 2 are 47 h 59 min apart; esketamine doses are usually at "
            "least 48 h apart",
        )
    ]


def test_SPR_SCH_3_esketamine_doses_48h_apart_do_not_warn() -> None:
    esk = plan(Route.INTRANASAL_ESKETAMINE, planned=12)
    assert warnings(state(esk, sessions=dosed_at(0, 48 * 60)), RULES) == []


def test_KAP_4_ketamine_doses_14_days_apart_do_not_warn() -> None:
    assert warnings(state(sessions=dosed_at(0, 14 * 24 * 60)), RULES) == []


def test_KAP_4_ketamine_doses_more_than_14_days_apart_warn() -> None:
    found = warnings(state(sessions=dosed_at(0, 14 * 24 * 60 + 1)), RULES)
    assert [w.rule_id for w in found] == ["KAP-4"]
    assert found[0].message.startswith("dosing sessions 1 and 2 are 14.0 days apart")


def test_soft_warnings_ignore_cancelled_sessions_and_never_block_booking() -> None:
    sessions = [
        *dosed_at(0),
        slot(D, START + timedelta(hours=1), status=model.SessionStatus.CANCELLED),
    ]
    esk = plan(Route.INTRANASAL_ESKETAMINE, planned=12)
    assert warnings(state(esk, sessions=sessions), RULES) == []


# -- KAP-2 (soft): integration still unbooked 24 h before it is due --------------------------


def _owed(due_in_hours: float) -> tuple[PlanState, datetime]:
    dosing = done(D, 0, 1)
    due_by = dosing.ends_at + timedelta(hours=72)
    owed = model.Deadline(dosing.session_id, due_by, "th-ben", model.DeadlineStatus.OPEN)
    return state(plan(phase=D), sessions=[dosing], deadlines=[owed]), due_by - timedelta(
        hours=due_in_hours
    )


def test_KAP_2_no_warning_before_48_h() -> None:
    s, now = _owed(24 + 1 / 60)  # 47 h 59 min into the 72 h
    assert warnings(s, RULES, now) == []


def test_KAP_2_warns_at_48_h_without_a_booked_integration_session() -> None:
    s, now = _owed(24)
    assert warnings(s, RULES, now) == [
        model.Violation(
            "KAP-2",
            "no integration session is booked after dosing session 1; it is due with th-ben "
            "by Thu 07 Jan 2027 12:00 America/New_York",
        )
    ]


def test_KAP_2_a_booked_integration_session_silences_the_warning() -> None:
    s, now = _owed(1)
    booked = slot(I, START + timedelta(days=2), sequence=1, session_id="i-1", minutes=60)
    s = state(s.plan, sessions=[*s.sessions, booked], deadlines=s.deadlines)
    assert warnings(s, RULES, now) == []
