"""The REMS Patient Monitoring Form (SPR-PMF-1, clinical rulebook 1.5), assembled
from what the platform's events say about one esketamine dosing session, plus the
few fields no event carries (completed by a clinician, coded values only).

Each required field that is still unknown is listed by name in `missing_fields`;
a form is `incomplete` while any is, `ready` when none is, `submitted` once a
coordinator recorded its submission to the REMS. Pure: no I/O.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from kap_shared.events.enums import ConcomitantMedicationClass, Dissociation

from .rules import RecordsRules
from .timeline import ReadingFact


class PmfStatus(StrEnum):
    INCOMPLETE = "incomplete"
    READY = "ready"
    SUBMITTED = "submitted"


# Required fields, in the form's order (rulebook 1.5); each is listed when missing.
REQUIRED = (
    "patient_rems_id",
    "setting_rems_id",
    "prescriber_id",
    "monitoring_hcp_id",
    "session_date",
    "doses",
    "dose_lot_numbers",
    "concomitant_medications",
    "bp_pre_dose",
    "bp_40_min",
    "bp_pre_discharge",
    "spo2_checks",
    "sedation",
    "dissociation",
    "monitoring_minutes",
    "vitals_acceptable_pre_dose",
    "vitals_acceptable_pre_completion",
    "ready_to_leave_minutes",
    "discharge",
)


@dataclass(frozen=True)
class DoseFact:
    administered_at: datetime
    dose_mg: float
    device_number: int | None
    lot_number: str | None
    concomitant_medications: Sequence[str] | None


@dataclass(frozen=True)
class AlertFact:
    alert_id: str
    rule_id: str
    metric: str
    value: float
    raised_at: datetime
    resolved_at: datetime | None


@dataclass(frozen=True)
class DischargeFact:
    first_dose_at: datetime
    cleared_at: datetime
    observed_minutes: float
    signed_by: str | None


@dataclass(frozen=True)
class SessionFacts:
    """Everything records knows about one esketamine dosing session."""

    session_id: str
    session_at: datetime
    prescriber_id: str | None = None
    nurse_id: str | None = None
    doses: Sequence[DoseFact] = ()
    readings: Sequence[ReadingFact] = ()
    critical_alerts: Sequence[AlertFact] = ()
    discharge: DischargeFact | None = None
    completions: Mapping[str, Any] = field(default_factory=dict)
    # Pre-filled from the patient's (and site's) previous forms when not completed here.
    carried_over: Mapping[str, Any] = field(default_factory=dict)


def _bp(reading: ReadingFact) -> dict[str, Any] | None:
    sys, dia = reading.values.get("bp_systolic"), reading.values.get("bp_diastolic")
    if sys is None or dia is None:
        return None
    return {"systolic": sys, "diastolic": dia, "recorded_at": reading.recorded_at.isoformat()}


def three_bps(
    facts: SessionFacts, rules: RecordsRules
) -> tuple[dict[str, Any] | None, dict[str, Any] | None, dict[str, Any] | None]:
    """SPR-MON-1: before the first device, ~40 min after it, and before discharge."""
    bps = sorted(
        ((r.recorded_at, bp) for r in facts.readings if (bp := _bp(r)) is not None),
        key=lambda item: item[0],
    )
    start = min((d.administered_at for d in facts.doses), default=None)
    if start is None:
        return None, None, None
    earliest = start - timedelta(minutes=rules.pmf_pre_dose_bp_minutes)
    before = [bp for at, bp in bps if earliest <= at <= start]
    low, high = (start + timedelta(minutes=m) for m in rules.pmf_bp_40_window_minutes)
    forty = [(at, bp) for at, bp in bps if low <= at <= high]
    target = start + timedelta(minutes=40)
    bp_40 = min(forty, key=lambda item: abs(item[0] - target))[1] if forty else None
    end = facts.discharge.cleared_at if facts.discharge else None
    after = [bp for at, bp in bps if at > high and (end is None or at <= end)]
    return (before[-1] if before else None), bp_40, (after[-1] if after else None)


def _course(values: Sequence[Any], *, baseline: Any) -> dict[str, Any] | None:
    """Y/N and resolved: any value other than the baseline; the last one back to it."""
    if not values:
        return None
    observed = any(v != baseline for v in values)
    return {
        "observed": observed,
        "resolved": (values[-1] == baseline) if observed else None,
        "assessments": len(values),
    }


def assemble(facts: SessionFacts, rules: RecordsRules) -> dict[str, Any]:
    """The form's sections (JSON-ready) with `missing_fields`."""
    readings = sorted(facts.readings, key=lambda r: (r.recorded_at, r.event_id))
    doses = sorted(facts.doses, key=lambda d: d.administered_at)
    pre, forty, before_discharge = three_bps(facts, rules)
    completed = {**facts.carried_over, **facts.completions}
    concomitant: dict[str, bool] | None = None
    for dose in doses:
        if dose.concomitant_medications is not None:
            taken = set(dose.concomitant_medications)
            concomitant = {c.value: c.value in taken for c in ConcomitantMedicationClass}
    moaas = [
        r.values["sedation_moaas"] for r in readings if r.values.get("sedation_moaas") is not None
    ]
    dissociation = [r.values["dissociation"] for r in readings if r.values.get("dissociation")]
    discharge = facts.discharge
    form: dict[str, Any] = {
        "patient_rems_id": completed.get("patient_rems_id"),
        "setting_rems_id": completed.get("setting_rems_id"),
        "prescriber_id": facts.prescriber_id,
        "monitoring_hcp_id": facts.nurse_id or (discharge.signed_by if discharge else None),
        "session_date": doses[0].administered_at.date().isoformat() if doses else None,
        "doses": [
            {
                "device_number": d.device_number,
                "dose_mg": d.dose_mg,
                "lot_number": d.lot_number,
                "administered_at": d.administered_at.isoformat(),
            }
            for d in doses
        ],
        "total_dose_mg": sum(d.dose_mg for d in doses) if doses else None,
        "concomitant_medications": concomitant,
        "bp_pre_dose": pre,
        "bp_40_min": forty,
        "bp_pre_discharge": before_discharge,
        "spo2_checks": [
            {"spo2": r.values["spo2"], "recorded_at": r.recorded_at.isoformat()}
            for r in readings
            if r.values.get("spo2") is not None
        ],
        "sedation": _course(moaas, baseline=5),  # MOAA/S 5: fully awake
        "dissociation": _course(dissociation, baseline=Dissociation.NONE.value),
        "monitoring_minutes": discharge.observed_minutes if discharge else None,
        "vitals_acceptable_pre_dose": completed.get("vitals_acceptable_pre_dose"),
        "vitals_acceptable_pre_completion": completed.get("vitals_acceptable_pre_completion"),
        "ready_to_leave_minutes": completed.get("ready_to_leave_minutes"),
        "adverse_events": [
            {
                "alert_id": a.alert_id,
                "rule_id": a.rule_id,
                "metric": a.metric,
                "value": a.value,
                "raised_at": a.raised_at.isoformat(),
                "resolved": a.resolved_at is not None,
                "resolved_at": a.resolved_at.isoformat() if a.resolved_at else None,
            }
            for a in sorted(facts.critical_alerts, key=lambda a: (a.raised_at, a.alert_id))
        ],
        "discharge": (
            {
                "cleared_at": discharge.cleared_at.isoformat(),
                "signed_by": discharge.signed_by,
                "first_dose_at": discharge.first_dose_at.isoformat(),
            }
            if discharge
            else None
        ),
    }
    form["missing_fields"] = missing_fields(form)
    return form


def missing_fields(form: Mapping[str, Any]) -> list[str]:
    missing = []
    for name in REQUIRED:
        value = form.get(name)
        if name == "dose_lot_numbers":
            if not form["doses"] or any(not d["lot_number"] for d in form["doses"]):
                missing.append(name)
        elif name == "discharge":
            if value is None or not value.get("signed_by"):
                missing.append(name)
        elif value is None or value == []:
            missing.append(name)
    return missing


def status_of(missing: Sequence[str], *, submitted: bool) -> PmfStatus:
    if submitted:
        return PmfStatus.SUBMITTED
    return PmfStatus.INCOMPLETE if missing else PmfStatus.READY


def due_by(session_at: datetime, rules: RecordsRules) -> datetime:
    """SPR-PMF-1: 7 calendar days after the session (configurable)."""
    return session_at + timedelta(days=rules.pmf_deadline_days)


def reminder_times(session_at: datetime, rules: RecordsRules) -> list[tuple[datetime, int]]:
    """(when, days left) for each reminder before the deadline."""
    return [
        (session_at + timedelta(days=day), round(rules.pmf_deadline_days - day))
        for day in sorted(rules.pmf_reminder_days)
    ]
