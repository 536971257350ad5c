"""Discharge criteria (clinical rulebook 1.3 SPR-MON-3, 1.4, 2.6 KET-DIS-*), pure.

`blockers` lists every criterion that still fails; discharge is allowed when the
list is empty. The first blocker names the rule of the 409 response; all of them
are in its details, so the nurse sees everything that is left to do.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from kap_shared.events.enums import Route

from .rules import (
    KET_DIS_2,
    KET_DIS_3,
    KET_DIS_4,
    KET_DIS_6,
    MON_DIS_1,
    MON_DIS_2,
    SPR_MON_1,
    SPR_MON_3,
    MonitoringRules,
)


@dataclass(frozen=True)
class DischargeFacts:
    route: Route | None
    first_dose_at: datetime | None
    # End of dosing: the latest dose's administration (or infusion end) time.
    dosing_end_at: datetime | None
    # Rule ids of the session's open critical alerts.
    open_critical: Sequence[str] = ()
    # Latest value per metric (by recorded_at) and when the latest BP was recorded.
    latest: Mapping[str, float] = field(default_factory=dict)
    latest_bp_at: datetime | None = None
    baseline_bp: tuple[int, int] | None = None
    baseline_hr: int | None = None


@dataclass(frozen=True)
class Blocker:
    rule_id: str
    message: str
    details: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {"rule_id": self.rule_id, "message": self.message, **self.details}


def observed_minutes(first_dose_at: datetime, now: datetime) -> float:
    return (now - first_dose_at) / timedelta(minutes=1)


def _within(value: float, baseline: float | None, tolerance_pct: float) -> bool:
    return baseline is not None and abs(value - baseline) <= baseline * tolerance_pct / 100


def blockers(facts: DischargeFacts, rules: MonitoringRules, now: datetime) -> list[Blocker]:
    if facts.first_dose_at is None or facts.route is None or facts.dosing_end_at is None:
        return [Blocker(MON_DIS_1, "no dose is recorded for this session")]
    found: list[Blocker] = []
    minimum = rules.min_observation_minutes(facts.route)
    if facts.route is Route.INTRANASAL_ESKETAMINE:
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
                {
                    "observed_minutes": round(observed, 1),
                    "required_minutes": minimum,
                    "discharge_allowed_at": allowed_at.isoformat(),
                },
            )
        )
    if facts.open_critical:
        found.append(
            Blocker(
                MON_DIS_2,
                f"open critical alert(s): {', '.join(sorted(set(facts.open_critical)))}",
                {"open_alerts": sorted(set(facts.open_critical))},
            )
        )
    latest = facts.latest
    spo2 = latest.get("spo2")
    if spo2 is not None and spo2 < rules.discharge_spo2_at_least:
        found.append(
            Blocker(
                KET_DIS_2,
                f"latest SpO2 {spo2:g} % is below {rules.discharge_spo2_at_least:g} %",
                {"metric": "spo2", "value": spo2},
            )
        )
    found.extend(_vitals_in_range(facts, rules))
    moaas = latest.get("sedation_moaas")
    if moaas is not None and moaas < rules.discharge_moaas_at_least:
        found.append(
            Blocker(
                KET_DIS_4,
                f"latest MOAA/S {moaas:g}: the patient is not yet alert "
                f"(needs {rules.discharge_moaas_at_least})",
                {"metric": "sedation_moaas", "value": moaas},
            )
        )
    if rules.discharge_bp_max_age_minutes is not None:
        oldest = now - timedelta(minutes=rules.discharge_bp_max_age_minutes)
        if facts.latest_bp_at is None or facts.latest_bp_at < oldest:
            found.append(
                Blocker(
                    SPR_MON_1,
                    "record a pre-discharge blood pressure "
                    f"(none in the last {rules.discharge_bp_max_age_minutes} minutes)",
                )
            )
    return found


def _vitals_in_range(facts: DischargeFacts, rules: MonitoringRules) -> list[Blocker]:
    """KET-DIS-3: BP/HR below the soft limits or within 20 % of baseline; RR in range."""
    latest = facts.latest
    out: list[Blocker] = []
    tolerance = rules.discharge_baseline_tolerance_pct
    base_sys, base_dia = facts.baseline_bp or (None, None)
    sys_, dia = latest.get("bp_systolic"), latest.get("bp_diastolic")
    bp_soft_ok = (sys_ is None or sys_ <= rules.discharge_bp_systolic_at_most) and (
        dia is None or dia <= rules.discharge_bp_diastolic_at_most
    )
    bp_baseline_ok = (sys_ is None or _within(sys_, base_sys, tolerance)) and (
        dia is None or _within(dia, base_dia, tolerance)
    )
    if not (bp_soft_ok or bp_baseline_ok):
        shown = f"{sys_:g}" if sys_ is not None else "-"
        shown += f"/{dia:g}" if dia is not None else "/-"
        out.append(
            Blocker(
                KET_DIS_3,
                f"latest blood pressure {shown} mmHg is above "
                f"{rules.discharge_bp_systolic_at_most}/{rules.discharge_bp_diastolic_at_most} "
                f"and not within {tolerance:g} % of baseline",
                {"metric": "bp", "value": shown},
            )
        )
    hr = latest.get("heart_rate")
    if (
        hr is not None
        and hr > rules.discharge_hr_at_most
        and not _within(hr, facts.baseline_hr, tolerance)
    ):
        out.append(
            Blocker(
                KET_DIS_3,
                f"latest heart rate {hr:g}/min is above {rules.discharge_hr_at_most}/min "
                f"and not within {tolerance:g} % of baseline",
                {"metric": "heart_rate", "value": hr},
            )
        )
    rr = latest.get("respiratory_rate")
    if rr is not None and not rules.discharge_rr_at_least <= rr <= rules.discharge_rr_at_most:
        out.append(
            Blocker(
                KET_DIS_3,
                f"latest respiratory rate {rr:g}/min is outside "
                f"{rules.discharge_rr_at_least}-{rules.discharge_rr_at_most}/min",
                {"metric": "respiratory_rate", "value": rr},
            )
        )
    return out
