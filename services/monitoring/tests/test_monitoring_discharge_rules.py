"""Discharge criteria and outcome measures as pure functions, both sides of each
boundary (SPR-MON-1/2/3, SPR-DIS-1, SPR-GOAL, KET-DIS-1..6, MBC-1, MBC-3)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from monitoring_flows import SIGNED, STABLE

from kap_monitoring.domain.discharge import (
    Assessment,
    DischargeFacts,
    blockers,
    observed_minutes,
)
from kap_monitoring.domain.outcomes import follow_ups, outcome, pcl5_provisional
from kap_monitoring.domain.rules import MonitoringRules
from kap_shared.clinical.instruments import score
from kap_shared.events.enums import Dissociation, Instrument, Role, Route, Severity

RULES = MonitoringRules()
FIRST = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
LATER = FIRST + timedelta(hours=3)
# Every criterion in range, charted a minute before LATER.
GOOD = {name: value for name, value in STABLE.items() if name != "dissociation"}


def assessment(at: datetime = LATER - timedelta(minutes=1), **overrides: Any) -> Assessment:
    values: dict[str, Any] = {
        "assessed_by": "rx-ada",
        "assessed_at": at,
        **SIGNED,
    }
    values.update(overrides)
    return Assessment(**values)


def facts(
    route: Route | None = Route.INTRANASAL_ESKETAMINE,
    *,
    charted: datetime = LATER - timedelta(minutes=1),
    **overrides: Any,
) -> DischargeFacts:
    values: dict[str, Any] = {
        "route": route,
        "first_dose_at": FIRST,
        "dosing_end_at": FIRST + timedelta(minutes=10),
        "latest": dict(GOOD),
        "latest_at": dict.fromkeys(GOOD, charted),
        "dissociation": Dissociation.NONE,
        "dissociation_at": charted,
        "baseline_bp": (124, 78),
        "baseline_hr": 72,
        "assessment": assessment(charted),
    }
    values.update(overrides)
    return DischargeFacts(**values)


def rule_ids(found: list[Any]) -> list[str]:
    return [b.rule_id for b in found]


# -- SPR-MON-3 / KET-DIS-6 ------------------------------------------------------------------


def test_SPR_MON_3_esketamine_119_minutes_fails() -> None:
    [blocker] = blockers(facts(), RULES, FIRST + timedelta(minutes=119))
    assert blocker.rule_id == "SPR-MON-3"
    assert blocker.details["required_minutes"] == 120
    assert blocker.details["observed_minutes"] == 119.0
    assert blocker.details["discharge_allowed_at"] == (FIRST + timedelta(minutes=120)).isoformat()


def test_SPR_MON_3_esketamine_119_minutes_59_seconds_fails() -> None:
    now = FIRST + timedelta(minutes=119, seconds=59, microseconds=999_999)
    assert rule_ids(blockers(facts(), RULES, now)) == ["SPR-MON-3"]


def test_SPR_MON_3_esketamine_120_minutes_passes() -> None:
    assert blockers(facts(), RULES, FIRST + timedelta(minutes=120)) == []


def test_SPR_MON_3_counts_from_the_first_device_not_the_last() -> None:
    later_devices = facts(dosing_end_at=FIRST + timedelta(minutes=10))
    assert blockers(later_devices, RULES, FIRST + timedelta(minutes=120)) == []


@pytest.mark.parametrize(("route", "minimum"), [(Route.IV, 60), (Route.IM, 60), (Route.ORAL, 120)])
def test_KET_DIS_6_ketamine_counts_from_the_end_of_dosing(route: Route, minimum: int) -> None:
    end = FIRST + timedelta(minutes=40)  # e.g. a 40-minute infusion
    found = blockers(facts(route, dosing_end_at=end), RULES, end + timedelta(minutes=minimum - 1))
    assert rule_ids(found) == ["KET-DIS-6"]
    assert blockers(facts(route, dosing_end_at=end), RULES, end + timedelta(minutes=minimum)) == []


def test_KET_DIS_6_minutes_are_site_configuration() -> None:
    rules = MonitoringRules(ketamine_min_observation_minutes={Route.IV: 30})
    now = FIRST + timedelta(minutes=10 + 30)
    assert blockers(facts(Route.IV), rules, now) == []
    assert rule_ids(blockers(facts(Route.IV), RULES, now)) == ["KET-DIS-6"]


def test_MON_DIS_1_no_dose_no_discharge() -> None:
    found = blockers(facts(first_dose_at=None, dosing_end_at=None, route=None), RULES, FIRST)
    assert rule_ids(found) == ["MON-DIS-1"]


# -- alerts and latest vitals ---------------------------------------------------------------


def test_MON_DIS_2_an_open_critical_alert_blocks() -> None:
    found = blockers(facts(open_critical=["KET-MON-BP", "KET-MON-BP"]), RULES, LATER)
    assert rule_ids(found) == ["MON-DIS-2"]
    assert found[0].details["open_alerts"] == ["KET-MON-BP"]
    assert "KET-MON-BP" in found[0].message


@pytest.mark.parametrize(("value", "blocked"), [(91.9, True), (92.0, False)])
def test_KET_DIS_2_latest_spo2_at_least_92(value: float, blocked: bool) -> None:
    found = blockers(facts(latest={"spo2": value}), RULES, LATER)
    assert rule_ids(found) == (["KET-DIS-2"] if blocked else [])


@pytest.mark.parametrize(
    ("systolic", "diastolic", "blocked"),
    [
        (160, 100, False),  # at the soft limits
        (161, 85, True),  # above, and 161 is more than 20 % over a baseline of 124
        (148, 101, True),  # diastolic above 100 and over 78 + 20 %
        (148, 93, False),  # within 20 % of baseline 124/78 (148.8 / 93.6)
    ],
)
def test_KET_DIS_3_latest_bp_below_soft_limits_or_near_baseline(
    systolic: int, diastolic: int, blocked: bool
) -> None:
    latest = {"bp_systolic": systolic, "bp_diastolic": diastolic}
    assert rule_ids(blockers(facts(latest=latest), RULES, LATER)) == (
        ["KET-DIS-3"] if blocked else []
    )


def test_KET_DIS_3_within_20_percent_of_a_high_baseline_passes() -> None:
    found = blockers(
        facts(latest={"bp_systolic": 170, "bp_diastolic": 102}, baseline_bp=(150, 95)),
        RULES,
        LATER,
    )
    assert found == []


@pytest.mark.parametrize(("value", "blocked"), [(110, False), (111, True)])
def test_KET_DIS_3_latest_heart_rate(value: int, blocked: bool) -> None:
    found = blockers(facts(latest={"heart_rate": value}, baseline_hr=60), RULES, LATER)
    assert rule_ids(found) == (["KET-DIS-3"] if blocked else [])


@pytest.mark.parametrize(("value", "blocked"), [(9, True), (10, False), (24, False), (25, True)])
def test_KET_DIS_3_latest_respiratory_rate(value: int, blocked: bool) -> None:
    found = blockers(facts(latest={"respiratory_rate": value}), RULES, LATER)
    assert rule_ids(found) == (["KET-DIS-3"] if blocked else [])


@pytest.mark.parametrize(("value", "blocked"), [(4, True), (5, False)])
def test_KET_DIS_4_patient_alert_MOAAS_5(value: int, blocked: bool) -> None:
    found = blockers(facts(latest={"sedation_moaas": value}), RULES, LATER)
    assert rule_ids(found) == (["KET-DIS-4"] if blocked else [])


def test_every_failing_criterion_is_listed_time_first() -> None:
    found = blockers(
        facts(open_critical=["KET-MON-SPO2"], latest={"spo2": 90, "sedation_moaas": 3}),
        RULES,
        FIRST + timedelta(minutes=30),
    )
    assert rule_ids(found) == ["SPR-MON-3", "MON-DIS-2", "KET-DIS-2", "KET-DIS-4"]


# -- fail closed: every criterion needs a recent reading ------------------------------------


@pytest.mark.parametrize(
    ("route", "missing", "rule"),
    [
        (Route.INTRANASAL_ESKETAMINE, "bp_systolic", "SPR-MON-1"),  # the pre-discharge BP
        (Route.IV, "bp_systolic", "KET-DIS-3"),
        (Route.IV, "heart_rate", "KET-DIS-3"),
        (Route.INTRANASAL_ESKETAMINE, "spo2", "SPR-MON-2"),
        (Route.IV, "spo2", "KET-DIS-2"),
        (Route.IV, "respiratory_rate", "KET-DIS-3"),
        (Route.IV, "sedation_moaas", "KET-DIS-4"),
    ],
)
def test_a_missing_reading_blocks_naming_its_rule(route: Route, missing: str, rule: str) -> None:
    times = {m: t for m, t in facts().latest_at.items() if not m.startswith(missing.split("_")[0])}
    values = {m: v for m, v in GOOD.items() if m in times}
    found = blockers(facts(route, latest=values, latest_at=times), RULES, LATER)
    assert rule_ids(found) == [rule]
    assert found[0].details["latest_at"] is None
    assert "record" in found[0].clear


@pytest.mark.parametrize(
    ("age", "blocked"), [(timedelta(minutes=30), False), (timedelta(minutes=30, seconds=1), True)]
)
def test_a_reading_older_than_the_max_age_is_stale(age: timedelta, blocked: bool) -> None:
    times = {**facts().latest_at, "heart_rate": LATER - age}
    found = blockers(facts(Route.IV, latest_at=times), RULES, LATER)
    assert rule_ids(found) == (["KET-DIS-3"] if blocked else [])
    if blocked:
        assert "stale" in found[0].message


def test_a_stale_value_out_of_range_is_not_judged_twice() -> None:
    latest = {**GOOD, "spo2": 85}
    times = {**facts().latest_at, "spo2": LATER - timedelta(hours=1)}
    assert rule_ids(blockers(facts(Route.IV, latest=latest, latest_at=times), RULES, LATER)) == [
        "KET-DIS-2"
    ]


def test_the_reading_age_is_site_configuration() -> None:
    rules = MonitoringRules(discharge_reading_max_age_minutes=60)
    times = {**facts().latest_at, "heart_rate": LATER - timedelta(minutes=45)}
    assert blockers(facts(Route.IV, latest_at=times), rules, LATER) == []
    assert rule_ids(blockers(facts(Route.IV, latest_at=times), RULES, LATER)) == ["KET-DIS-3"]


# -- SPR-GOAL: dissociation resolved ------------------------------------------------------------


def test_SPR_GOAL_no_dissociation_assessment_blocks() -> None:
    found = blockers(facts(dissociation=None, dissociation_at=None), RULES, LATER)
    assert rule_ids(found) == ["SPR-GOAL"]


def test_SPR_GOAL_a_stale_dissociation_assessment_blocks() -> None:
    found = blockers(facts(dissociation_at=LATER - timedelta(minutes=31)), RULES, LATER)
    assert rule_ids(found) == ["SPR-GOAL"]


@pytest.mark.parametrize(
    ("value", "blocked"),
    [
        (Dissociation.NONE, False),
        (Dissociation.MILD, True),
        (Dissociation.MODERATE, True),
        (Dissociation.SEVERE, True),
    ],
)
def test_SPR_GOAL_unresolved_dissociation_blocks(value: Dissociation, blocked: bool) -> None:
    found = blockers(facts(dissociation=value), RULES, LATER)
    assert rule_ids(found) == (["SPR-GOAL"] if blocked else [])


@pytest.mark.parametrize(("cadss", "blocked"), [(4, False), (5, True)])
def test_SPR_GOAL_a_CADSS_above_4_is_unresolved(cadss: int, blocked: bool) -> None:
    found = blockers(facts(cadss_total=cadss), RULES, LATER)
    assert rule_ids(found) == (["SPR-GOAL"] if blocked else [])


# -- KET-DIS-3 in both directions ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("metric", "value", "blocked"),
    [
        ("bp_systolic", 100, False),  # 124 - 20 % = 99.2
        ("bp_systolic", 99, True),
        ("bp_diastolic", 63, False),  # 78 - 20 % = 62.4
        ("bp_diastolic", 62, True),
        ("heart_rate", 58, False),  # 72 - 20 % = 57.6
        ("heart_rate", 57, True),
    ],
)
def test_KET_DIS_3_more_than_20_percent_below_baseline_blocks(
    metric: str, value: int, blocked: bool
) -> None:
    found = blockers(facts(latest={**GOOD, metric: value}), RULES, LATER)
    assert rule_ids(found) == (["KET-DIS-3"] if blocked else [])


@pytest.mark.parametrize(
    ("metric", "value", "blocked"),
    [
        ("bp_systolic", 90, False),
        ("bp_systolic", 89, True),
        ("bp_diastolic", 50, False),
        ("bp_diastolic", 49, True),
        ("heart_rate", 50, False),
        ("heart_rate", 49, True),
    ],
)
def test_KET_DIS_3_absolute_lower_limits_block_hypotension_and_bradycardia(
    metric: str, value: int, blocked: bool
) -> None:
    # No baseline: only the absolute limits apply.
    found = blockers(
        facts(latest={**GOOD, metric: value}, baseline_bp=None, baseline_hr=None), RULES, LATER
    )
    assert rule_ids(found) == (["KET-DIS-3"] if blocked else [])


def test_KET_DIS_3_lower_limits_are_site_configuration() -> None:
    rules = MonitoringRules(discharge_hr_at_least=45)
    low = facts(latest={**GOOD, "heart_rate": 48}, baseline_hr=None)
    assert blockers(low, rules, LATER) == []
    assert rule_ids(blockers(low, RULES, LATER)) == ["KET-DIS-3"]


# -- the signed stability assessment ------------------------------------------------------------


@pytest.mark.parametrize(
    ("route", "rule"), [(Route.INTRANASAL_ESKETAMINE, "SPR-DIS-1"), (Route.IV, "MON-DIS-3")]
)
def test_a_signed_stability_assessment_is_required(route: Route, rule: str) -> None:
    found = blockers(facts(route, assessment=None), RULES, LATER)
    assert rule_ids(found) == [rule]
    assert "prescriber" in found[0].clear


def test_a_stale_stability_assessment_does_not_sign() -> None:
    fresh = facts(assessment=assessment(LATER - timedelta(minutes=30)))
    stale = facts(assessment=assessment(LATER - timedelta(minutes=30, seconds=1)))
    assert blockers(fresh, RULES, LATER) == []
    assert rule_ids(blockers(stale, RULES, LATER)) == ["SPR-DIS-1"]


@pytest.mark.parametrize(
    ("field", "rule"),
    [
        ("sedation_resolved", "SPR-GOAL"),
        ("dissociation_resolved", "SPR-GOAL"),
        ("respiratory_depression_resolved", "SPR-GOAL"),
        ("clinically_stable", "SPR-DIS-1"),
        ("vital_signs_acceptable", "SPR-DIS-1"),
        ("alert_and_oriented", "SPR-DIS-1"),
    ],
)
def test_an_assessment_that_says_not_stable_blocks(field: str, rule: str) -> None:
    overrides: dict[str, Any] = {field: False}
    found = blockers(facts(assessment=assessment(**overrides)), RULES, LATER)
    assert rule_ids(found) == [rule]
    assert found[0].details["fields"] == [field]


@pytest.mark.parametrize(("escort", "blocked"), [(True, False), (False, True), (None, True)])
def test_KET_DIS_5_ketamine_needs_an_escort(escort: bool | None, blocked: bool) -> None:
    found = blockers(facts(Route.IM, assessment=assessment(escort_confirmed=escort)), RULES, LATER)
    assert rule_ids(found) == (["KET-DIS-5"] if blocked else [])
    # Esketamine: transport is checked at check-in (SPR-PRE-8), not here.
    assert blockers(facts(assessment=assessment(escort_confirmed=escort)), RULES, LATER) == []


@pytest.mark.parametrize(
    ("score", "pre_dose", "blocked"),
    [(9, None, False), (8, None, True), (None, None, True), (8, 8, False), (7, 8, True)],
)
def test_KET_DIS_1_aldrete_at_least_9_or_back_to_the_pre_dose_score(
    score: int | None, pre_dose: int | None, blocked: bool
) -> None:
    signed = assessment(aldrete_score=score, aldrete_pre_dose=pre_dose)
    found = blockers(facts(Route.IV, assessment=signed), RULES, LATER)
    assert rule_ids(found) == (["KET-DIS-1"] if blocked else [])


def test_signer_roles_are_validated_configuration() -> None:
    assert MonitoringRules().discharge_signer_roles == frozenset({Role.PRESCRIBER})
    assert (
        Role.NURSE
        in MonitoringRules(discharge_signer_roles=["prescriber", "nurse"]).discharge_signer_roles
    )
    with pytest.raises(ValueError, match="discharge_signer_roles"):
        MonitoringRules(discharge_signer_roles=[])


def test_observed_minutes() -> None:
    assert observed_minutes(FIRST, FIRST + timedelta(minutes=120, seconds=30)) == 120.5


# -- MBC-3 / MBC-1 --------------------------------------------------------------------------


def phq9(total: int, item9: int = 0) -> list[int | None]:
    """Nine answers summing to `total` with item 9 as given."""
    rest = total - item9
    items: list[int | None] = []
    for _ in range(8):
        value = min(3, rest)
        items.append(value)
        rest -= value
    assert rest == 0
    return [*items, item9]


def test_MBC_3_a_50_percent_drop_is_a_response() -> None:
    result = outcome(score(Instrument.PHQ9, phq9(10)), 20, RULES)
    assert (result.response, result.change_pct, result.remission) == (True, -50.0, False)
    assert result.band == "moderate"


def test_MBC_3_a_45_percent_drop_is_not_a_response() -> None:
    result = outcome(score(Instrument.PHQ9, phq9(11)), 20, RULES)
    assert (result.response, result.change_pct) == (False, -45.0)


@pytest.mark.parametrize(("total", "remission"), [(4, True), (5, False)])
def test_MBC_3_remission_is_a_PHQ9_below_5(total: int, remission: bool) -> None:
    assert outcome(score(Instrument.PHQ9, phq9(total)), 20, RULES).remission is remission


def test_MBC_3_without_a_baseline_there_is_no_change_or_response() -> None:
    result = outcome(score(Instrument.PHQ9, phq9(3)), None, RULES)
    assert (result.baseline_total, result.change_pct, result.response) == (None, None, False)
    assert result.remission is True
    zero = outcome(score(Instrument.PHQ9, phq9(0)), 0, RULES)
    assert (zero.change_pct, zero.response) == (None, False)


def test_MBC_3_remission_is_defined_for_the_PHQ9_only() -> None:
    result = outcome(score(Instrument.GAD7, [0] * 7), 14, RULES)
    assert (result.response, result.remission, result.change_pct) == (True, False, -100.0)


def test_MBC_3_a_rise_is_a_positive_change() -> None:
    assert outcome(score(Instrument.PCL5, [2] * 20), 32, RULES).change_pct == 25.0


@pytest.mark.parametrize(
    ("item9", "severity"),
    [(0, None), (1, Severity.CRITICAL), (2, Severity.CRITICAL), (3, Severity.CRITICAL)],
)
def test_MBC_1_any_positive_item_9_is_a_concern(item9: int, severity: Severity | None) -> None:
    assert RULES.mbc1_severity(item9) is severity


def test_MBC_1_a_site_may_grade_item_9_of_1_as_a_warning() -> None:
    rules = MonitoringRules(phq9_item9_critical_at_least=2)
    assert rules.mbc1_severity(1) is Severity.WARNING
    assert rules.mbc1_severity(2) is Severity.CRITICAL


# -- MBC-2, MBC-4, GAD-7 referral, PCL-5 provisional diagnosis -----------------------------


def follow(instrument: Instrument, items: list[int | None], previous: int | None) -> list[str]:
    scored = score(instrument, items)
    return follow_ups(instrument, scored.total, items, previous, RULES)


@pytest.mark.parametrize(("total", "flagged"), [(19, False), (20, True)])
def test_MBC_2_a_PHQ9_of_20_or_more_notifies_the_care_team(total: int, flagged: bool) -> None:
    assert follow(Instrument.PHQ9, phq9(total), None) == (["MBC-2"] if flagged else [])


@pytest.mark.parametrize(("previous", "flagged"), [(7, False), (6, True)])
def test_MBC_2_a_rise_of_5_from_the_previous_score(previous: int, flagged: bool) -> None:
    assert follow(Instrument.PHQ9, phq9(11), previous) == (["MBC-2"] if flagged else [])


@pytest.mark.parametrize(
    ("total", "expected"),
    [
        (9, []),
        (10, ["MBC-GAD7-REFER"]),
        (14, ["MBC-GAD7-REFER"]),
        (15, ["MBC-4", "MBC-GAD7-REFER"]),
    ],
)
def test_MBC_4_and_the_GAD7_referral(total: int, expected: list[str]) -> None:
    items = [min(3, max(0, total - 3 * i)) for i in range(7)]
    assert follow(Instrument.GAD7, list(items), None) == expected


@pytest.mark.parametrize(("previous", "flagged"), [(11, False), (10, True)])
def test_MBC_4_a_PCL5_rise_of_10(previous: int, flagged: bool) -> None:
    items: list[int | None] = [1] * 20  # 20, nothing endorsed (>= 2)
    assert follow(Instrument.PCL5, items, previous) == (["MBC-4"] if flagged else [])


def pcl5(b: int, c: int, d: int, e: int) -> list[int | None]:
    """PCL-5 answers with this many endorsed (2) items per cluster, the rest 1."""
    clusters = [(5, b), (2, c), (7, d), (6, e)]
    return [2 if i < endorsed else 1 for size, endorsed in clusters for i in range(size)]


@pytest.mark.parametrize(
    ("counts", "provisional"),
    [
        ((1, 1, 2, 2), True),
        ((0, 1, 2, 2), False),
        ((1, 0, 2, 2), False),
        ((1, 1, 1, 2), False),
        ((1, 1, 2, 1), False),
    ],
)
def test_MBC_PCL5_PROVISIONAL_needs_1_B_1_C_2_D_2_E(
    counts: tuple[int, int, int, int], provisional: bool
) -> None:
    items = pcl5(*counts)
    assert pcl5_provisional(items, RULES) is provisional
    assert ("MBC-PCL5-PROVISIONAL" in follow(Instrument.PCL5, items, None)) is provisional


def test_a_PCL5_item_of_1_is_not_endorsed() -> None:
    assert pcl5_provisional([1] * 20, RULES) is False
    assert pcl5_provisional([1] * 20, MonitoringRules(pcl5_item_endorsed_at_least=1)) is True
