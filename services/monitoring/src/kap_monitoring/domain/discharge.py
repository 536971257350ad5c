"""Discharge criteria (clinical rulebook 1.3 SPR-MON-2/3, 1.4 SPR-DIS-*, SPR-GOAL,
2.6 KET-DIS-*), pure. Discharge fails closed.

`blockers` lists every criterion that still fails; discharge is allowed when the
list is empty. A criterion without a recent enough reading (missing or stale) is a
blocker exactly like a value out of range. A clinician's documented stability
assessment (by default a prescriber's) signs the discharge.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta

from sqlmodel import SQLModel

from kap_shared.events.enums import ClearedBy, Dissociation, Route

from .gates import Blocker
from .rules import (
    KET_DIS_1,
    KET_DIS_2,
    KET_DIS_3,
    KET_DIS_4,
    KET_DIS_5,
    KET_DIS_6,
    MON_DIS_1,
    MON_DIS_2,
    MON_DIS_3,
    SPR_DIS_1,
    SPR_GOAL,
    SPR_MON_1,
    SPR_MON_2,
    SPR_MON_3,
    MonitoringRules,
)

__all__ = [
    "Assessment",
    "Blocker",
    "DischargeFacts",
    "StabilityCriteria",
    "blockers",
    "observed_minutes",
    "signer_rule",
]


class StabilityCriteria(SQLModel):
    """What a stability assessment documents, coded (SPR-MON-3, SPR-DIS-1/2, SPR-GOAL,
    KET-DIS-1/4/5): one list for the stored assessment, its view and the rules here."""

    clinically_stable: bool
    vital_signs_acceptable: bool
    sedation_resolved: bool
    dissociation_resolved: bool
    respiratory_depression_resolved: bool
    alert_and_oriented: bool
    escort_confirmed: bool | None = None
    aldrete_score: int | None = None
    aldrete_pre_dose: int | None = None


_GOAL_FIELDS = ("sedation_resolved", "dissociation_resolved", "respiratory_depression_resolved")
_STABLE_FIELDS = ("clinically_stable", "vital_signs_acceptable", "alert_and_oriented")


class Assessment(StabilityCriteria):
    """The latest stability assessment a clinician allowed to sign documented."""

    assessed_by: str
    assessed_at: datetime


@dataclass(frozen=True)
class DischargeFacts:
    route: Route | None
    first_dose_at: datetime | None
    # End of dosing: the latest dose's end (charted, or the route's default duration).
    dosing_end_at: datetime | None
    # Rule ids of the session's open critical alerts.
    open_critical: Sequence[str] = ()
    # Latest value per metric (by recorded_at) and when it was recorded.
    latest: Mapping[str, float] = field(default_factory=dict)
    latest_at: Mapping[str, datetime] = field(default_factory=dict)
    # SPR-GOAL: the latest coded dissociation assessment, its time and CADSS total.
    dissociation: Dissociation | None = None
    dissociation_at: datetime | None = None
    cadss_total: int | None = None
    baseline_bp: tuple[int, int] | None = None
    baseline_hr: int | None = None
    assessment: Assessment | None = None


def observed_minutes(first_dose_at: datetime, now: datetime) -> float:
    return (now - first_dose_at) / timedelta(minutes=1)


def signer_rule(route: Route | None) -> str:
    """SPR-DIS-1 for esketamine; MON-DIS-3 (the same duty) for ketamine."""
    return SPR_DIS_1 if route is Route.INTRANASAL_ESKETAMINE else MON_DIS_3


def _within(value: float, baseline: float | None, tolerance_pct: float) -> bool:
    return baseline is not None and abs(value - baseline) <= baseline * tolerance_pct / 100


def blockers(facts: DischargeFacts, rules: MonitoringRules, now: datetime) -> list[Blocker]:
    if facts.first_dose_at is None or facts.route is None or facts.dosing_end_at is None:
        return [
            Blocker(
                MON_DIS_1,
                "no dose is recorded for this session",
                "record the dose",
                cleared_by=ClearedBy.DOSE,
            )
        ]
    esketamine = facts.route is Route.INTRANASAL_ESKETAMINE
    found: list[Blocker] = []
    minimum = rules.min_observation_minutes(facts.route)
    if esketamine:
        start, rule, what = facts.first_dose_at, SPR_MON_3, "the first esketamine device"
    else:
        start, rule, what = facts.dosing_end_at, KET_DIS_6, "the end of dosing"
    allowed_at = start + timedelta(minutes=minimum)
    if now < allowed_at:
        observed = observed_minutes(start, now)
        found.append(
            Blocker(
                rule,
                f"observed {observed:.0f} of at least {minimum} minutes after {what}",
                f"keep observing until {allowed_at.isoformat()}",
                {
                    "observed_minutes": round(observed, 1),
                    "required_minutes": minimum,
                    "discharge_allowed_at": allowed_at.isoformat(),
                },
                ClearedBy.TIME,
            )
        )
    if facts.open_critical:
        names = sorted(set(facts.open_critical))
        found.append(
            Blocker(
                MON_DIS_2,
                f"open critical alert(s): {', '.join(names)}",
                "values back in range, or a prescriber resolves the alert(s)",
                {"open_alerts": names},
                ClearedBy.ALERT_DECISION,
            )
        )
    found.extend(_cleared_by(ClearedBy.READING, _readings(facts, rules, now, esketamine)))
    found.extend(_cleared_by(ClearedBy.SIGNATURE, _assessment(facts, rules, now, esketamine)))
    return found


def _cleared_by(act: ClearedBy, found: list[Blocker]) -> list[Blocker]:
    """Every blocker of one family is cleared by the same kind of act: a reading for
    the readings' criteria, the signed assessment for what the assessment records."""
    return [replace(b, cleared_by=act) for b in found]


# (metric group, metrics, rule when esketamine, rule when ketamine, what to record)
_CRITERIA: tuple[tuple[str, tuple[str, ...], str, str, str], ...] = (
    ("bp", ("bp_systolic", "bp_diastolic"), SPR_MON_1, KET_DIS_3, "a blood pressure"),
    ("heart_rate", ("heart_rate",), KET_DIS_3, KET_DIS_3, "a heart rate"),
    ("spo2", ("spo2",), SPR_MON_2, KET_DIS_2, "an SpO2 (pulse oximetry)"),
    ("respiratory_rate", ("respiratory_rate",), KET_DIS_3, KET_DIS_3, "a respiratory rate"),
    ("sedation_moaas", ("sedation_moaas",), KET_DIS_4, KET_DIS_4, "a sedation score (MOAA/S)"),
)


def _readings(
    facts: DischargeFacts, rules: MonitoringRules, now: datetime, esketamine: bool
) -> list[Blocker]:
    """Each criterion needs a recent reading; the recent ones must be in range."""
    max_age = rules.discharge_reading_max_age_minutes
    oldest = now - timedelta(minutes=max_age)
    out: list[Blocker] = []
    fresh: set[str] = set()
    for group, metrics, eskt_rule, ket_rule, what in _CRITERIA:
        times = [facts.latest_at[m] for m in metrics if m in facts.latest_at]
        at = max(times) if times else None
        if at is not None and at >= oldest:
            fresh.add(group)
            continue
        out.append(
            Blocker(
                eskt_rule if esketamine else ket_rule,
                f"no {group} reading in the last {max_age} minutes"
                + (" (the latest is stale)" if at is not None else ""),
                f"record {what} now",
                {
                    "metric": group,
                    "missing": at is None,
                    "latest_at": at.isoformat() if at else None,
                },
            )
        )
    if facts.dissociation is None or facts.dissociation_at is None:
        out.append(
            Blocker(
                SPR_GOAL,
                "no dissociation assessment is recorded",
                "record a reading with the coded dissociation assessment (and CADSS if used)",
                {"metric": "dissociation", "missing": True},
            )
        )
    elif facts.dissociation_at < oldest:
        out.append(
            Blocker(
                SPR_GOAL,
                f"no dissociation assessment in the last {max_age} minutes",
                "assess dissociation again and record it",
                {"metric": "dissociation", "missing": False},
            )
        )
    elif facts.dissociation is not Dissociation.NONE or (
        facts.cadss_total is not None and facts.cadss_total > rules.discharge_cadss_at_most
    ):
        out.append(
            Blocker(
                SPR_GOAL,
                f"dissociation is not resolved (latest: {facts.dissociation.value}"
                + (f", CADSS {facts.cadss_total}" if facts.cadss_total is not None else "")
                + ")",
                "keep observing; record a new assessment once dissociation has resolved",
                {"metric": "dissociation", "value": facts.dissociation.value},
            )
        )
    latest = facts.latest
    spo2 = latest.get("spo2")
    if "spo2" in fresh and spo2 is not None and spo2 < rules.discharge_spo2_at_least:
        out.append(
            Blocker(
                KET_DIS_2,
                f"latest SpO2 {spo2:g} % is below {rules.discharge_spo2_at_least:g} %",
                "keep observing; recheck SpO2 on room air",
                {"metric": "spo2", "value": spo2},
            )
        )
    out.extend(_vitals_in_range(facts, rules, fresh))
    moaas = latest.get("sedation_moaas")
    if "sedation_moaas" in fresh and moaas is not None and moaas < rules.discharge_moaas_at_least:
        out.append(
            Blocker(
                KET_DIS_4,
                f"latest MOAA/S {moaas:g}: the patient is not yet alert "
                f"(needs {rules.discharge_moaas_at_least})",
                "keep observing; record MOAA/S again once the patient is alert",
                {"metric": "sedation_moaas", "value": moaas},
            )
        )
    return out


def _vitals_in_range(
    facts: DischargeFacts, rules: MonitoringRules, fresh: set[str]
) -> list[Blocker]:
    """KET-DIS-3 in both directions: below the absolute lower limits blocks
    (hypotension, bradycardia); above the soft upper limits blocks unless within 20 %
    of baseline; more than 20 % below baseline blocks."""
    latest = facts.latest
    out: list[Blocker] = []
    tolerance = rules.discharge_baseline_tolerance_pct
    base_sys, base_dia = facts.baseline_bp or (None, None)
    recheck = "keep observing and recheck; a prescriber assesses the patient"

    def check(value: float | None, lower: int, upper: int, baseline: float | None) -> str | None:
        if value is None:
            return None
        if value < lower:
            return f"below the lower limit {lower}"
        if value > upper and not _within(value, baseline, tolerance):
            return f"above {upper} and not within {tolerance:g} % of baseline"
        if baseline is not None and value < baseline * (1 - tolerance / 100):
            return f"more than {tolerance:g} % below baseline {baseline:g}"
        return None

    if "bp" in fresh:
        sys_, dia = latest.get("bp_systolic"), latest.get("bp_diastolic")
        problems = [
            f"systolic {why}"
            for why in [
                check(
                    sys_,
                    rules.discharge_bp_systolic_at_least,
                    rules.discharge_bp_systolic_at_most,
                    base_sys,
                )
            ]
            if why
        ] + [
            f"diastolic {why}"
            for why in [
                check(
                    dia,
                    rules.discharge_bp_diastolic_at_least,
                    rules.discharge_bp_diastolic_at_most,
                    base_dia,
                )
            ]
            if why
        ]
        if problems:
            shown = "/".join(f"{v:g}" if v is not None else "-" for v in (sys_, dia))
            out.append(
                Blocker(
                    KET_DIS_3,
                    f"latest blood pressure {shown} mmHg: {'; '.join(problems)}",
                    recheck,
                    {"metric": "bp", "value": shown},
                )
            )
    if "heart_rate" in fresh:
        hr = latest.get("heart_rate")
        why = check(
            hr,
            rules.discharge_hr_at_least,
            rules.discharge_hr_at_most,
            facts.baseline_hr,
        )
        if why and hr is not None:
            out.append(
                Blocker(
                    KET_DIS_3,
                    f"latest heart rate {hr:g}/min: {why}",
                    recheck,
                    {"metric": "heart_rate", "value": hr},
                )
            )
    rr = latest.get("respiratory_rate")
    if (
        "respiratory_rate" in fresh
        and rr is not None
        and not rules.discharge_rr_at_least <= rr <= rules.discharge_rr_at_most
    ):
        out.append(
            Blocker(
                KET_DIS_3,
                f"latest respiratory rate {rr:g}/min is outside "
                f"{rules.discharge_rr_at_least}-{rules.discharge_rr_at_most}/min",
                recheck,
                {"metric": "respiratory_rate", "value": rr},
            )
        )
    return out


def _assessment(
    facts: DischargeFacts, rules: MonitoringRules, now: datetime, esketamine: bool
) -> list[Blocker]:
    """SPR-DIS-1 / MON-DIS-3: a recent signed assessment whose coded answers all say
    stable; KET-DIS-1 (Aldrete) and KET-DIS-5 (escort) for ketamine."""
    rule = signer_rule(facts.route)
    signers = ", ".join(sorted(r.value for r in rules.discharge_signer_roles))
    max_age = rules.discharge_reading_max_age_minutes
    a = facts.assessment
    if a is None or a.assessed_at < now - timedelta(minutes=max_age):
        return [
            Blocker(
                rule,
                "no stability assessment signed "
                + ("yet" if a is None else f"in the last {max_age} minutes"),
                f"a {signers} documents the stability assessment "
                "(POST /sessions/{id}/stability-assessment)",
            )
        ]
    out: list[Blocker] = []
    # SPR-GOAL's effects resolved, then the signer's rule: stable, vitals, oriented.
    for rule_id, fields, state in (
        (SPR_GOAL, _GOAL_FIELDS, "resolved"),
        (rule, _STABLE_FIELDS, "stable"),
    ):
        failed = sorted(name for name in fields if not getattr(a, name))
        if failed:
            out.append(
                Blocker(
                    rule_id,
                    f"the assessment says not {state}: {', '.join(failed)}",
                    f"keep observing; sign a new assessment once {state}",
                    {"fields": failed},
                )
            )
    if not esketamine:
        if rules.escort_required_for_ketamine and a.escort_confirmed is not True:
            out.append(
                Blocker(
                    KET_DIS_5,
                    "no escort is confirmed: a responsible adult takes the patient home",
                    "confirm the escort in the stability assessment",
                )
            )
        score, pre = a.aldrete_score, a.aldrete_pre_dose
        at_least = rules.discharge_aldrete_at_least
        if score is None or (score < at_least and (pre is None or score < pre)):
            out.append(
                Blocker(
                    KET_DIS_1,
                    "Aldrete score missing"
                    if score is None
                    else f"Aldrete {score} is below {at_least} and below the pre-dose score",
                    f"record an Aldrete score of at least {at_least} (or back to the "
                    "pre-dose score) in the assessment",
                    {"aldrete_score": score},
                )
            )
    return out
