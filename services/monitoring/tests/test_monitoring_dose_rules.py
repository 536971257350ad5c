"""Dose gates as pure functions, both sides of each boundary (issue 8): MON-DOSE-2
(the observation clock), MON-DOSE-3 (the plan's route), holds on open critical alerts
and in-session safety concerns, SPR-PRE-3/4/5/7, SPR-ADM-1/2/3, KET-DIS-6's end."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from kap_monitoring.domain.dosing import DoseFacts, DoseRequest, dose_blockers, dosing_end
from kap_monitoring.domain.rules import MonitoringRules
from kap_shared.events.enums import Agent, ConcomitantMedicationClass, Route

RULES = MonitoringRules()
CHECK_IN = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
NOW = CHECK_IN + timedelta(minutes=30)
ESK = Route.INTRANASAL_ESKETAMINE


def request(route: Route = Route.IM, **overrides: Any) -> DoseRequest:
    esketamine = route is ESK
    values: dict[str, Any] = {
        "agent": Agent.ESKETAMINE if esketamine else Agent.KETAMINE,
        "route": route,
        "dose_mg": 28.0 if esketamine else 35.0,
        "device_number": 1 if esketamine else None,
        "administered_at": NOW - timedelta(minutes=1),
        "concomitant_medications": [] if esketamine else None,
        "nasal_medication_used": False if esketamine else None,
    }
    values.update(overrides)
    return DoseRequest(**values)


def facts(route: Route = Route.IM, **overrides: Any) -> DoseFacts:
    values: dict[str, Any] = {
        "checked_in_at": CHECK_IN,
        "plan_route": route,
        "bp_before_dose": True,
    }
    values.update(overrides)
    return DoseFacts(**values)


def rule_ids(req: DoseRequest, fx: DoseFacts, rules: MonitoringRules = RULES) -> list[str]:
    return [b.rule_id for b in dose_blockers(req, fx, rules, NOW)]


def test_a_dose_with_every_fact_in_place_passes() -> None:
    assert rule_ids(request(), facts()) == []
    assert rule_ids(request(ESK), facts(ESK)) == []


# -- MON-DOSE-2: the observation clock ----------------------------------------------------------


@pytest.mark.parametrize(
    ("given", "blocked"),
    [
        (CHECK_IN - timedelta(minutes=5), False),  # the charting tolerance
        (CHECK_IN - timedelta(minutes=5, seconds=1), True),  # backdated out of the window
        (NOW + timedelta(seconds=5), False),  # clock skew
        (NOW + timedelta(seconds=6), True),  # in the future
    ],
)
def test_MON_DOSE_2_administered_at_lies_inside_the_window(given: datetime, blocked: bool) -> None:
    found = dose_blockers(request(administered_at=given), facts(), RULES, NOW)
    assert [b.rule_id for b in found] == (["MON-DOSE-2"] if blocked else [])
    if blocked:
        assert found[0].clear


def test_MON_DOSE_2_tolerance_is_configuration() -> None:
    rules = MonitoringRules(dose_charting_tolerance_minutes=15)
    early = request(administered_at=CHECK_IN - timedelta(minutes=10))
    assert rule_ids(early, facts(), rules) == []
    assert rule_ids(early, facts()) == ["MON-DOSE-2"]


def test_MON_DOSE_2_the_end_of_dosing_is_not_in_the_future() -> None:
    req = request(Route.IV, dosing_ended_at=NOW + timedelta(minutes=10))
    assert rule_ids(req, facts(Route.IV)) == ["MON-DOSE-2"]


# -- MON-DOSE-3 / MON-DOSE-1: the plan ---------------------------------------------------------


def test_MON_DOSE_3_the_route_follows_the_plan() -> None:
    assert rule_ids(request(Route.IM), facts(plan_route=Route.IV)) == ["MON-DOSE-3"]
    assert rule_ids(request(ESK), facts(plan_route=Route.IM)) == ["MON-DOSE-3"]


def test_MON_DOSE_3_an_unknown_plan_refuses() -> None:
    assert rule_ids(request(), facts(plan_route=None)) == ["MON-DOSE-3"]


def test_MON_DOSE_1_one_agent_and_each_device_once() -> None:
    assert rule_ids(request(), facts(session_agent=Agent.ESKETAMINE)) == ["MON-DOSE-1"]
    device_1 = {1: NOW - timedelta(minutes=20)}
    assert rule_ids(request(ESK, device_number=1), facts(ESK, devices=device_1)) == ["MON-DOSE-1"]


# -- KET-DIS-6: the end of dosing --------------------------------------------------------------


def test_KET_DIS_6_an_infusion_needs_its_end() -> None:
    found = dose_blockers(request(Route.IV), facts(Route.IV), RULES, NOW)
    assert [b.rule_id for b in found] == ["KET-DIS-6"]
    assert "dosing_ended_at" in found[0].clear
    ended = request(Route.IV, dosing_ended_at=NOW)
    assert rule_ids(ended, facts(Route.IV)) == []
    assert dosing_end(ended, RULES) == (NOW, "charted")


def test_KET_DIS_6_a_route_with_a_default_duration_never_silently_uses_the_start() -> None:
    given = NOW - timedelta(minutes=1)
    assert dosing_end(request(Route.IM, administered_at=given), RULES) == (given, "default")
    rules = MonitoringRules(dosing_default_minutes={Route.IV: 40})
    assert dosing_end(request(Route.IV, administered_at=given), rules) == (
        given + timedelta(minutes=40),
        "default",
    )
    assert rule_ids(request(Route.IV), facts(Route.IV), rules) == []


# -- holds ------------------------------------------------------------------------------------


def test_an_open_critical_alert_holds_doses_under_its_rule_id() -> None:
    found = dose_blockers(request(), facts(open_critical=[("al-1", "KET-MON-SPO2")]), RULES, NOW)
    assert [b.rule_id for b in found] == ["KET-MON-SPO2"]
    assert "al-1" in found[0].clear
    assert rule_ids(request(), facts(open_critical=[])) == []


def test_an_unresolved_in_session_concern_holds_doses_MBC_1() -> None:
    found = dose_blockers(request(), facts(open_concerns=[("sc-1", "MBC-1")]), RULES, NOW)
    assert [b.rule_id for b in found] == ["MBC-1"]
    assert "sc-1" in found[0].clear


# -- SPR-PRE-4 / SPR-PRE-5 ----------------------------------------------------------------------


def test_SPR_PRE_4_esketamine_needs_a_bp_before_the_first_dose_by_default() -> None:
    assert rule_ids(request(ESK), facts(ESK, bp_before_dose=False)) == ["SPR-PRE-4"]
    assert rule_ids(request(ESK), facts(ESK, bp_before_dose=True)) == []
    # Ketamine: off by default, on per site.
    assert rule_ids(request(), facts(bp_before_dose=False)) == []
    rules = MonitoringRules(predose_bp_required_agents=["ketamine", "esketamine"])
    assert rule_ids(request(), facts(bp_before_dose=False), rules) == ["SPR-PRE-4"]


def test_SPR_PRE_5_a_pending_or_deferred_decision_holds_doses() -> None:
    assert rule_ids(request(), facts(predose_decision_pending=True)) == ["SPR-PRE-5"]
    assert rule_ids(request(), facts(predose_decision="defer")) == ["SPR-PRE-5"]
    assert rule_ids(request(), facts(predose_decision="proceed")) == []


# -- SPR-PRE-3 / SPR-PRE-7 (first device) ------------------------------------------------------


@pytest.mark.parametrize(("minutes_before", "blocked"), [(60, False), (59, True)])
def test_SPR_PRE_3_nasal_medication_at_least_an_hour_before(
    minutes_before: int, blocked: bool
) -> None:
    given = NOW - timedelta(minutes=1)
    req = request(
        ESK,
        administered_at=given,
        nasal_medication_used=True,
        nasal_medication_at=given - timedelta(minutes=minutes_before),
    )
    assert rule_ids(req, facts(ESK)) == (["SPR-PRE-3"] if blocked else [])


def test_SPR_PRE_3_the_question_is_answered_with_the_first_device() -> None:
    assert rule_ids(request(ESK, nasal_medication_used=None), facts(ESK)) == ["SPR-PRE-3"]
    used_unknown_time = request(ESK, nasal_medication_used=True)
    assert rule_ids(used_unknown_time, facts(ESK)) == ["SPR-PRE-3"]
    later_device = request(ESK, device_number=2, nasal_medication_used=None)
    assert rule_ids(later_device, facts(ESK, devices={1: NOW - timedelta(minutes=10)})) == []


def test_SPR_PRE_7_concomitant_medications_are_recorded_with_the_first_device() -> None:
    assert rule_ids(request(ESK, concomitant_medications=None), facts(ESK)) == ["SPR-PRE-7"]
    benzo = [ConcomitantMedicationClass.BENZODIAZEPINE]
    assert rule_ids(request(ESK, concomitant_medications=benzo), facts(ESK)) == []
    assert rule_ids(request(ESK, concomitant_medications=[]), facts(ESK)) == []  # asked: none


# -- SPR-ADM-1/2/3 -------------------------------------------------------------------------------


@pytest.mark.parametrize(("mg", "blocked"), [(28.0, False), (56.0, True), (27.9, True)])
def test_SPR_ADM_1_one_device_is_28_mg(mg: float, blocked: bool) -> None:
    assert rule_ids(request(ESK, dose_mg=mg), facts(ESK)) == (["SPR-ADM-1"] if blocked else [])


@pytest.mark.parametrize(
    ("gap", "blocked"),
    [(timedelta(minutes=5), False), (timedelta(minutes=4, seconds=59), True)],
)
def test_SPR_ADM_2_five_minutes_between_devices(gap: timedelta, blocked: bool) -> None:
    first = NOW - timedelta(minutes=10)
    req = request(ESK, device_number=2, administered_at=first + gap)
    assert rule_ids(req, facts(ESK, devices={1: first})) == (["SPR-ADM-2"] if blocked else [])


@pytest.mark.parametrize(("earlier", "blocked"), [(0.0, True), (28.0, True), (56.0, False)])
def test_SPR_ADM_3_84_mg_only_after_an_earlier_session_at_56(earlier: float, blocked: bool) -> None:
    devices = {1: NOW - timedelta(minutes=20), 2: NOW - timedelta(minutes=10)}
    req = request(ESK, device_number=3)
    found = rule_ids(req, facts(ESK, devices=devices, earlier_session_max_mg=earlier))
    assert found == (["SPR-ADM-3"] if blocked else [])


def test_SPR_ADM_3_56_mg_on_a_first_session_passes() -> None:
    req = request(ESK, device_number=2)
    assert rule_ids(req, facts(ESK, devices={1: NOW - timedelta(minutes=10)})) == []


def test_every_blocker_is_listed() -> None:
    req = request(ESK, dose_mg=56.0, administered_at=CHECK_IN - timedelta(hours=1))
    found = rule_ids(req, facts(ESK, bp_before_dose=False, open_critical=[("a", "KET-MON-BP")]))
    assert found == ["MON-DOSE-2", "KET-MON-BP", "SPR-PRE-4", "SPR-ADM-1"]
