"""The intra-session rules as pure functions, tested on both sides of every
boundary (rulebook section 7: "> X" is strict). Test names cite the rule id."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

import pytest
from pydantic import ValidationError

from kap_monitoring.domain import rules, vitals
from kap_monitoring.domain.rules import MonitoringRules
from kap_shared.events.enums import Severity
from kap_shared.rules import SiteRules

RULES = MonitoringRules()
T0 = vitals.micros(datetime(2026, 3, 2, 9, 0, tzinfo=UTC))


def at(seconds: float) -> int:
    return T0 + round(seconds * vitals.US)


def minutes(value: float) -> int:
    return at(value * 60)


def feed(
    readings: Sequence[vitals.Reading],
    limits: MonitoringRules = RULES,
    state: vitals.VitalsState | None = None,
) -> list[vitals.Finding]:
    state = state or vitals.VitalsState()
    out: list[vitals.Finding] = []
    for reading in readings:
        for group in reading.groups():
            out.extend(vitals.step(state, reading, group, limits))
    return out


def triggers(findings: Sequence[vitals.Finding], rule: str | None = None) -> list[vitals.Trigger]:
    return [
        f for f in findings if isinstance(f, vitals.Trigger) and (rule is None or f.rule_id == rule)
    ]


def clears(findings: Sequence[vitals.Finding], rule: str) -> list[vitals.Clear]:
    return [f for f in findings if isinstance(f, vitals.Clear) and f.rule_id == rule]


def prompts(findings: Sequence[vitals.Finding]) -> list[vitals.Prompt]:
    return [f for f in findings if isinstance(f, vitals.Prompt)]


def bp(t: int, systolic: int, diastolic: int, rid: str | None = None) -> vitals.Reading:
    return vitals.Reading(rid or f"bp-{t}", t, bp_systolic=systolic, bp_diastolic=diastolic)


def hr(t: int, value: int) -> vitals.Reading:
    return vitals.Reading(f"hr-{t}", t, heart_rate=value)


def spo2(t: int, value: float) -> vitals.Reading:
    return vitals.Reading(f"spo2-{t}", t, spo2=value)


def rr(t: int, value: int) -> vitals.Reading:
    return vitals.Reading(f"rr-{t}", t, respiratory_rate=value)


def moaas(t: int, value: int) -> vitals.Reading:
    return vitals.Reading(f"sed-{t}", t, sedation_moaas=value)


# -- KET-MON-BP -----------------------------------------------------------------------------


def test_KET_MON_BP_180_110_twice_is_not_above_the_limit() -> None:
    findings = feed([bp(minutes(0), 180, 110), bp(minutes(2), 180, 110)])
    assert triggers(findings, rules.KET_MON_BP) == []


def test_KET_MON_BP_181_110_twice_5_minutes_apart_alerts() -> None:
    findings = feed([bp(minutes(0), 181, 110), bp(minutes(5), 181, 110)])
    [alert] = triggers(findings, rules.KET_MON_BP)
    assert alert.severity is Severity.CRITICAL
    assert (alert.metric, alert.value, alert.threshold) == ("bp_systolic", 181, 180)
    assert "181/110" in alert.message
    assert "KET-MON-BP" in alert.message


def test_KET_MON_BP_181_110_twice_5_minutes_1_second_apart_no_alert() -> None:
    findings = feed([bp(minutes(0), 181, 110), bp(at(5 * 60 + 1), 181, 110)])
    assert triggers(findings, rules.KET_MON_BP) == []


def test_KET_MON_BP_diastolic_111_twice_alerts_naming_the_diastolic() -> None:
    findings = feed([bp(minutes(0), 170, 111), bp(minutes(3), 170, 111)])
    [alert] = triggers(findings, rules.KET_MON_BP)
    assert (alert.metric, alert.value, alert.threshold) == ("bp_diastolic", 111, 110)


def test_KET_MON_BP_200_120_once_is_not_critical() -> None:
    findings = feed([bp(minutes(0), 200, 120)])
    assert triggers(findings, rules.KET_MON_BP) == []


def test_KET_MON_BP_201_120_once_is_critical() -> None:
    [alert] = triggers(feed([bp(minutes(0), 201, 120)]), rules.KET_MON_BP)
    assert (alert.metric, alert.value, alert.threshold) == ("bp_systolic", 201, 200)
    assert "above 200/120" in alert.message


def test_KET_MON_BP_200_121_once_is_critical() -> None:
    [alert] = triggers(feed([bp(minutes(0), 200, 121)]), rules.KET_MON_BP)
    assert (alert.metric, alert.value, alert.threshold) == ("bp_diastolic", 121, 120)


def test_KET_MON_BP_single_185_112_only_asks_for_a_recheck() -> None:
    findings = feed([bp(minutes(0), 185, 112)])
    assert triggers(findings) == []
    [prompt] = prompts(findings)
    assert prompt.kind == vitals.BP_RECHECK
    assert prompt.due_t == minutes(5)


def test_KET_MON_BP_soft_limit_160_100_recheck_is_strict() -> None:
    assert prompts(feed([bp(minutes(0), 160, 100)])) == []
    assert len(prompts(feed([bp(minutes(0), 161, 100)]))) == 1
    assert len(prompts(feed([bp(minutes(0), 160, 101)]))) == 1


def test_KET_MON_BP_no_second_recheck_prompt_while_one_is_pending() -> None:
    findings = feed([bp(minutes(0), 165, 95), bp(minutes(2), 166, 95), bp(minutes(5), 167, 95)])
    assert [p.t for p in prompts(findings)] == [minutes(0), minutes(5)]


def test_KET_MON_BP_one_alert_per_episode_then_cleared_when_back_in_range() -> None:
    findings = feed(
        [
            bp(minutes(0), 185, 112),
            bp(minutes(2), 190, 115),
            bp(minutes(4), 195, 118),
            bp(minutes(6), 205, 125),
            bp(minutes(8), 180, 110),  # back in range (not above 180/110)
        ]
    )
    assert len(triggers(findings, rules.KET_MON_BP)) == 1
    [clear] = clears(findings, rules.KET_MON_BP)
    assert clear.t == minutes(8)


def test_KET_MON_BP_a_new_episode_after_clearing_alerts_again() -> None:
    findings = feed(
        [
            bp(minutes(0), 185, 112),
            bp(minutes(2), 185, 112),
            bp(minutes(3), 130, 80),
            bp(minutes(20), 185, 112),
            bp(minutes(22), 185, 112),
        ]
    )
    assert [t.t for t in triggers(findings, rules.KET_MON_BP)] == [minutes(2), minutes(22)]


# -- KET-MON-HR -----------------------------------------------------------------------------


def test_KET_MON_HR_4_minutes_above_120_no_alert() -> None:
    findings = feed([hr(minutes(m), 125) for m in range(5)])  # 0..4 min
    assert triggers(findings, rules.KET_MON_HR) == []


def test_KET_MON_HR_5_minutes_above_120_alert() -> None:
    findings = feed([hr(minutes(m), 125) for m in range(6)])  # 0..5 min
    [alert] = triggers(findings, rules.KET_MON_HR)
    assert alert.t == minutes(5)
    assert (alert.metric, alert.value, alert.threshold) == ("heart_rate", 125, 120)
    assert alert.severity is Severity.CRITICAL
    assert "5 min" in alert.message


def test_KET_MON_HR_4_minutes_59_seconds_no_alert() -> None:
    findings = feed([hr(at(0), 130), hr(at(299), 130)])
    assert triggers(findings, rules.KET_MON_HR) == []


def test_KET_MON_HR_120_is_not_above_120() -> None:
    findings = feed([hr(minutes(m), 120) for m in range(10)])
    assert triggers(findings) == []


def test_KET_MON_HR_a_reading_at_120_restarts_the_5_minutes() -> None:
    readings = [hr(minutes(0), 130), hr(minutes(3), 120), hr(minutes(4), 130), hr(minutes(8), 130)]
    assert triggers(feed(readings), rules.KET_MON_HR) == []
    assert len(triggers(feed([*readings, hr(minutes(9), 130)]), rules.KET_MON_HR)) == 1


def test_KET_MON_HR_clears_when_back_at_or_below_120() -> None:
    findings = feed([hr(minutes(m), 130) for m in range(7)] + [hr(minutes(7), 118)])
    assert len(triggers(findings, rules.KET_MON_HR)) == 1
    assert len(clears(findings, rules.KET_MON_HR)) == 1


# -- KET-MON-SPO2 ---------------------------------------------------------------------------


def test_KET_MON_SPO2_91_for_59_seconds_no_alert() -> None:
    findings = feed([spo2(at(0), 91), spo2(at(30), 91), spo2(at(59), 91)])
    assert triggers(findings, rules.KET_MON_SPO2) == []


def test_KET_MON_SPO2_91_for_60_seconds_alert() -> None:
    findings = feed([spo2(at(0), 91), spo2(at(30), 91), spo2(at(60), 91)])
    [alert] = triggers(findings, rules.KET_MON_SPO2)
    assert alert.t == at(60)
    assert (alert.metric, alert.value, alert.threshold) == ("spo2", 91, 92)


def test_KET_MON_SPO2_92_is_not_below_92() -> None:
    findings = feed([spo2(at(s), 92) for s in range(0, 300, 15)])
    assert triggers(findings) == []


def test_KET_MON_SPO2_89_9_once_alerts() -> None:
    [alert] = triggers(feed([spo2(at(0), 89.9)]), rules.KET_MON_SPO2)
    assert (alert.value, alert.threshold) == (89.9, 90)
    assert "89.9 %" in alert.message


def test_KET_MON_SPO2_90_once_no_alert() -> None:
    assert triggers(feed([spo2(at(0), 90)])) == []


def test_KET_MON_SPO2_recovery_to_92_clears() -> None:
    findings = feed([spo2(at(0), 88), spo2(at(10), 91), spo2(at(20), 92)])
    assert len(triggers(findings, rules.KET_MON_SPO2)) == 1
    assert [c.t for c in clears(findings, rules.KET_MON_SPO2)] == [at(20)]


# -- KET-MON-RR / KET-MON-RR-SOFT -----------------------------------------------------------


def test_KET_MON_RR_8_is_not_critical_7_is() -> None:
    eight = feed([rr(at(0), 8)])
    assert triggers(eight, rules.KET_MON_RR) == []
    assert [t.rule_id for t in triggers(eight)] == [rules.KET_MON_RR_SOFT]  # 8 < 10
    [alert] = triggers(feed([rr(at(0), 7)]))
    assert (alert.rule_id, alert.severity, alert.threshold) == (
        rules.KET_MON_RR,
        Severity.CRITICAL,
        8,
    )


@pytest.mark.parametrize(("value", "alerts"), [(9, True), (10, False), (24, False), (25, True)])
def test_KET_MON_RR_SOFT_outside_10_to_24(value: int, alerts: bool) -> None:
    found = triggers(feed([rr(at(0), value)]), rules.KET_MON_RR_SOFT)
    assert bool(found) is alerts
    if found:
        assert found[0].severity is Severity.WARNING


def test_KET_MON_RR_escalates_and_de_escalates() -> None:
    findings = feed([rr(at(0), 9), rr(at(60), 6), rr(at(120), 9), rr(at(180), 14)])
    assert [
        (type(f).__name__, f.rule_id, f.t) for f in findings if not isinstance(f, vitals.Prompt)
    ] == [
        ("Trigger", rules.KET_MON_RR_SOFT, at(0)),
        ("Trigger", rules.KET_MON_RR, at(60)),
        ("Clear", rules.KET_MON_RR, at(120)),
        ("Clear", rules.KET_MON_RR_SOFT, at(180)),
    ]


# -- KET-MON-SED / KET-MON-SED-SOFT ---------------------------------------------------------


def test_KET_MON_SED_MOAAS_1_is_not_critical() -> None:
    findings = feed([moaas(at(0), 1)])
    assert triggers(findings, rules.KET_MON_SED) == []
    assert [t.rule_id for t in triggers(findings)] == [rules.KET_MON_SED_SOFT]


def test_KET_MON_SED_MOAAS_0_is_critical() -> None:
    [alert] = triggers(feed([moaas(at(0), 0)]))
    assert (alert.rule_id, alert.severity) == (rules.KET_MON_SED, Severity.CRITICAL)
    assert "does not respond" in alert.message


@pytest.mark.parametrize(("value", "alerts"), [(3, True), (4, False)])
def test_KET_MON_SED_SOFT_MOAAS_3_or_less(value: int, alerts: bool) -> None:
    assert bool(triggers(feed([moaas(at(0), value)]), rules.KET_MON_SED_SOFT)) is alerts


# -- SPR-MON-6 / SPR-PRE-5 ------------------------------------------------------------------


def test_SPR_MON_6_crisis_symptoms_are_the_configured_codes_only() -> None:
    reading = vitals.Reading("r", at(0), symptoms=("nausea", "chest_pain", "vision_change"))
    assert vitals.crisis_symptoms(reading, RULES) == ("chest_pain", "vision_change")
    assert vitals.crisis_symptoms(vitals.Reading("r", at(0), symptoms=("nausea",)), RULES) == ()


@pytest.mark.parametrize(
    ("systolic", "diastolic", "elevated"),
    [(140, 90, False), (141, 90, True), (140, 91, True), (120, 80, False)],
)
def test_SPR_PRE_5_above_140_90_is_strict(systolic: int, diastolic: int, elevated: bool) -> None:
    assert vitals.predose_bp_elevated(bp(at(0), systolic, diastolic), RULES) is elevated


# -- late readings, state, configuration ----------------------------------------------------


def test_replay_in_any_order_finds_the_episode_in_reading_time() -> None:
    readings = [hr(minutes(m), 125) for m in range(6)]
    state, episodes = vitals.replay(reversed(readings), vitals.Group.HR, RULES)
    [episode] = episodes
    assert (episode.rule_id, episode.start_t, episode.end_t) == (rules.KET_MON_HR, minutes(5), None)
    assert rules.KET_MON_HR in state.active
    assert state.latest["heart_rate"] == 125


def test_replay_reports_ended_episodes() -> None:
    readings = [spo2(at(0), 88), spo2(at(30), 95)]
    _, [episode] = vitals.replay(readings, vitals.Group.SPO2, RULES)
    assert (episode.start_t, episode.end_t, episode.end_reading_id) == (
        at(0),
        at(30),
        f"spo2-{at(30)}",
    )


def test_in_order_evaluation_and_replay_agree() -> None:
    readings = [hr(minutes(m / 2), 100 + (m * 7) % 40) for m in range(60)]
    state = vitals.VitalsState()
    in_order = feed(readings, state=state)
    replayed_state, episodes = vitals.replay(readings, vitals.Group.HR, RULES)
    assert [t.t for t in triggers(in_order)] == [e.start_t for e in episodes]
    assert replayed_state.to_json() == state.to_json()


def test_a_late_reading_is_detected_per_metric_group() -> None:
    state = vitals.VitalsState()
    feed([vitals.Reading("a", minutes(10), heart_rate=80, spo2=97)], state=state)
    late_hr = hr(minutes(5), 90)
    assert state.is_late(late_hr, vitals.Group.HR)
    assert not state.is_late(bp(minutes(5), 120, 80), vitals.Group.BP)


def test_state_survives_its_json_form() -> None:
    state = vitals.VitalsState()
    feed([hr(minutes(m), 130) for m in range(6)] + [bp(minutes(6), 185, 112)], state=state)
    assert vitals.VitalsState.from_json(state.to_json()) == state
    assert vitals.VitalsState.from_json(None) == vitals.VitalsState()


def test_microseconds_are_exact() -> None:
    moment = datetime(2026, 3, 2, 9, 0, 0, 123457, tzinfo=UTC)
    assert vitals.from_micros(vitals.micros(moment)) == moment
    assert vitals.micros(moment + timedelta(seconds=300)) - vitals.micros(moment) == 300 * vitals.US


def test_KET_MON_HR_thresholds_come_from_site_configuration() -> None:
    site_rules = SiteRules(MonitoringRules(), {"site-b": {"hr_sustained_seconds": 120}})
    readings = [hr(minutes(m), 125) for m in range(3)]  # 0..2 min
    assert triggers(feed(readings, site_rules.for_site("site-a"))) == []
    assert len(triggers(feed(readings, site_rules.for_site("site-b")), rules.KET_MON_HR)) == 1


@pytest.mark.parametrize(
    "overrides",
    [
        {"bp_check_reminder_minutes": 45},
        {"rr_soft_below": 6},
        {"moaas_soft_at_or_below": -1},
        {"spo2_critical_below": 95},
        {"unknown_threshold": 1},
    ],
)
def test_inconsistent_configuration_fails_at_start_up(overrides: dict[str, int]) -> None:
    with pytest.raises(ValidationError):
        SiteRules(MonitoringRules(), {"site-b": overrides})


# -- section 2.4 soft limits and KET-MON-HR-LOW (issue 8) -------------------------------------


HR_RECHECK = [("hr_recheck", "KET-MON-HR")]
SPO2_RECHECK = [("spo2_recheck", "KET-MON-SPO2")]


@pytest.mark.parametrize(
    ("reading", "asked"),
    [
        pytest.param(hr(at(0), 110), [], id="HR 110: no recheck"),
        pytest.param(hr(at(0), 111), HR_RECHECK, id="HR above 110: recheck"),
        pytest.param(spo2(at(0), 94.0), [], id="SpO2 94: no recheck"),
        pytest.param(spo2(at(0), 93.9), SPO2_RECHECK, id="SpO2 below 94: recheck"),
    ],
)
def test_soft_limits_ask_for_a_recheck_without_an_alert(
    reading: vitals.Reading, asked: list[tuple[str, str]]
) -> None:
    found = feed([reading])
    assert [(p.kind, p.rule_id) for p in prompts(found)] == asked
    assert triggers(found) == []


def test_HR_recheck_is_asked_once_while_pending() -> None:
    found = feed([hr(at(0), 115), hr(at(60), 116), hr(at(300), 117)])
    assert [p.t for p in prompts(found)] == [at(0), at(300)]


@pytest.mark.parametrize(("value", "alert"), [(50, False), (49, True)])
def test_KET_MON_HR_LOW_below_50_is_critical(value: int, alert: bool) -> None:
    state = vitals.VitalsState()
    found = feed([hr(at(0), value)], state=state)
    assert [(t.rule_id, t.severity) for t in triggers(found)] == (
        [("KET-MON-HR-LOW", Severity.CRITICAL)] if alert else []
    )
    if alert:
        assert clears(feed([hr(at(60), 50)], state=state), "KET-MON-HR-LOW")


def test_SpO2_91_for_30_seconds_is_a_recheck_and_for_60_an_alert() -> None:
    state = vitals.VitalsState()
    first = feed([spo2(at(0), 91), spo2(at(30), 91)], state=state)
    assert [p.kind for p in prompts(first)] == ["spo2_recheck"]
    assert triggers(first) == []
    later = feed([spo2(at(60), 91)], state=state)
    assert [t.rule_id for t in triggers(later)] == ["KET-MON-SPO2"]


@pytest.mark.parametrize(("value", "sentinel"), [(75.0, False), (74.9, True)])
def test_KET_MON_SPO2_below_75_is_a_sentinel_event(value: float, sentinel: bool) -> None:
    [alert] = triggers(feed([spo2(at(0), value)]))
    assert alert.rule_id == "KET-MON-SPO2"
    assert ("sentinel" in alert.message) is sentinel
    assert alert.threshold == (75.0 if sentinel else 90.0)


def test_soft_limits_are_validated_configuration() -> None:
    assert MonitoringRules(hr_recheck_above=100, spo2_recheck_below=95).hr_recheck_above == 100
    with pytest.raises(ValidationError, match="KET-MON-SPO2"):
        MonitoringRules(spo2_recheck_below=91)
    with pytest.raises(ValidationError, match="KET-MON-HR-LOW"):
        MonitoringRules(hr_critical_below=115)
    with pytest.raises(ValidationError, match="unknown_key"):
        MonitoringRules.model_validate({"unknown_key": 1})
