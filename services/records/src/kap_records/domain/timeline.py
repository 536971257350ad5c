"""The timeline's vocabulary: a short summary of each event made from codes and
numbers only (no names, no free text), the rule ids it cites, the session it
belongs to, and the per-session summary of vitals readings. Pure functions."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from kap_shared.events.monitoring import VITAL_METRICS

# Free text a producer may carry; the record never copies it (no PHI).
FREE_TEXT_FIELDS = frozenset({"message", "note", "error"})
VITALS_SUMMARY = "VitalsSummary"
DEFAULT_PHASE = "preparation"  # referral, screening and consent come before the first session


def coded_data(data: Mapping[str, Any]) -> dict[str, Any]:
    """The event's data as the record keeps it: everything but free text."""
    return {k: v for k, v in data.items() if k not in FREE_TEXT_FIELDS}


def session_of(data: Mapping[str, Any]) -> str | None:
    value = data.get("session_id") or data.get("dosing_session_id")
    return str(value) if value else None


def rule_ids_of(event_type: str, data: Mapping[str, Any]) -> list[str]:
    ids: list[str] = []
    if rule_id := data.get("rule_id"):
        ids.append(str(rule_id))
    if event_type == "PatientScreened":
        ids += [str(r) for r in data.get("reasons", [])]
    if event_type.startswith("Pmf"):
        ids.append("SPR-PMF-1")
    if event_type == "DischargeCleared":
        ids.append("SPR-MON-3")
    return list(dict.fromkeys(ids))


def _hhmm(value: Any) -> str:
    text = str(value)
    return text[:16].replace("T", " ") if len(text) >= 16 else text


def _num(value: Any) -> str:
    number = float(value)
    return str(int(number)) if number == int(number) else f"{number:g}"


def summarize(event_type: str, data: Mapping[str, Any]) -> str:
    """One line of codes and numbers (UTC times)."""
    d = data
    match event_type:
        case "PatientReferred":
            return f"Referred: {', '.join(d.get('indications', []))}"
        case "PatientScreened":
            baseline = d.get("baseline", {})
            text = (
                f"Screened {d.get('outcome')} for route {d.get('route')}: "
                f"PHQ-9 {baseline.get('phq9_total')} (item 9: {baseline.get('phq9_item9')}), "
                f"GAD-7 {baseline.get('gad7_total')}, "
                f"BP {baseline.get('bp_systolic')}/{baseline.get('bp_diastolic')}"
            )
            if d.get("reviewed_by"):
                text += f"; reviewed by {d['reviewed_by']} ({d.get('review_reason')})"
            return text
        case "ConsentRecorded":
            return f"Consent {d.get('scope')} {'granted' if d.get('granted') else 'withdrawn'}"
        case "TreatmentPlanCreated":
            return (
                f"Plan {d.get('protocol')} ({d.get('route')}): "
                f"{d.get('planned_dosing_sessions')} dosing sessions; prescriber "
                f"{d.get('prescriber_id')}, therapist {d.get('therapist_id')}"
            )
        case "SessionScheduled":
            return (
                f"{d.get('phase')} session {d.get('sequence')} booked for "
                f"{_hhmm(d.get('starts_at'))} in {d.get('room_id')}"
            )
        case "SessionRescheduled":
            return f"{d.get('phase')} session moved to {_hhmm(d.get('starts_at'))}"
        case "SessionCancelled":
            return f"{d.get('phase')} session cancelled ({d.get('reason')})"
        case "SessionCheckedIn":
            return f"{d.get('phase')} session checked in"
        case "SessionCompleted":
            return f"{d.get('phase')} session completed"
        case "PhaseAdvanced":
            return f"Phase {d.get('from_phase') or 'start'} -> {d.get('to_phase')}"
        case "IntegrationOverdue":
            return f"Integration overdue since {_hhmm(d.get('due_by'))} ({d.get('therapist_id')})"
        case "InductionReviewDue":
            return (
                f"Induction review due: {d.get('dosing_sessions_completed')} dosing sessions "
                f"completed ({d.get('prescriber_id')})"
            )
        case "DoseAdministered":
            device = f" device {d['device_number']}" if d.get("device_number") else ""
            lot = f", lot {d['lot_number']}" if d.get("lot_number") else ""
            return f"{d.get('agent')} {_num(d.get('dose_mg'))} mg {d.get('route')}{device}{lot}"
        case "VitalsAlert":
            return (
                f"{d.get('severity')} alert {d.get('rule_id')}: {d.get('metric')} "
                f"{_num(d.get('value'))} (threshold {_num(d.get('threshold'))})"
            )
        case "VitalsAlertResolved":
            return f"Alert {d.get('alert_id')} resolved"
        case "ObservationDue":
            return f"Observation due: {d.get('kind')} at {_hhmm(d.get('due_at'))}"
        case "DischargeCleared":
            signed = f", signed by {d['signed_by']}" if d.get("signed_by") else ""
            return f"Discharge cleared after {_num(d.get('observed_minutes'))} min{signed}"
        case "OutcomeRecorded":
            return f"{d.get('instrument')} {_num(d.get('total'))} ({d.get('band')})"
        case "SafetyConcernRaised":
            return f"{d.get('severity')} safety concern: {d.get('source')} {_num(d.get('value'))}"
        case "NotificationSent":
            return f"Notified {d.get('recipient_id')} by {d.get('channel')} ({d.get('priority')})"
        case "NotificationFailed":
            return f"Notification to {d.get('recipient_id')} by {d.get('channel')} failed"
        case "AlertAcknowledged":
            return f"Acknowledged by {d.get('acknowledged_by')}"
        case "AlertEscalated":
            return (
                f"Escalated to level {d.get('level')}: {', '.join(d.get('to_recipient_ids', []))}"
            )
        case "PmfOpened":
            return f"REMS monitoring form opened, due {_hhmm(d.get('due_by'))}"
        case "PmfReminder":
            missing = ", ".join(d.get("missing_fields", [])) or "none"
            return (
                f"REMS monitoring form reminder: {d.get('days_left')} days left; missing {missing}"
            )
        case "PmfOverdue":
            missing = ", ".join(d.get("missing_fields", [])) or "none"
            return f"REMS monitoring form overdue; missing {missing}"
        case "PmfSubmitted":
            return f"REMS monitoring form submitted by {d.get('submitted_by')}"
    return event_type


# -- vitals, summarised per session ---------------------------------------------------------


@dataclass(frozen=True)
class ReadingFact:
    event_id: str
    session_id: str
    recorded_at: datetime
    values: Mapping[str, Any]


@dataclass
class VitalsSummary:
    session_id: str
    count: int = 0
    first_at: datetime | None = None
    last_at: datetime | None = None
    ranges: dict[str, dict[str, float]] = field(default_factory=dict)  # metric -> {min, max}
    event_ids: list[str] = field(default_factory=list)

    def as_data(self) -> dict[str, Any]:
        return {
            "session_id": self.session_id,
            "count": self.count,
            "first_at": self.first_at.isoformat() if self.first_at else None,
            "last_at": self.last_at.isoformat() if self.last_at else None,
            "ranges": self.ranges,
        }

    @property
    def summary(self) -> str:
        parts = [f"{self.count} vitals readings"]
        labels = {
            "heart_rate": "HR",
            "spo2": "SpO2",
            "respiratory_rate": "RR",
            "sedation_moaas": "MOAA/S",
        }
        sys, dia = self.ranges.get("bp_systolic"), self.ranges.get("bp_diastolic")
        if sys and dia:
            parts.append(
                f"BP {_num(sys['min'])}-{_num(sys['max'])}/{_num(dia['min'])}-{_num(dia['max'])}"
            )
        for metric, label in labels.items():
            if span := self.ranges.get(metric):
                parts.append(f"{label} {_num(span['min'])}-{_num(span['max'])}")
        return ", ".join(parts)


def summarize_vitals(readings: Iterable[ReadingFact]) -> list[VitalsSummary]:
    """One summary per session: count, first and last reading, min/max per metric."""
    by_session: dict[str, VitalsSummary] = {}
    for reading in sorted(readings, key=lambda r: (r.recorded_at, r.event_id)):
        s = by_session.setdefault(reading.session_id, VitalsSummary(reading.session_id))
        s.count += 1
        s.first_at = s.first_at or reading.recorded_at
        s.last_at = reading.recorded_at
        s.event_ids.append(reading.event_id)
        for metric in VITAL_METRICS:
            value = reading.values.get(metric)
            if value is None:
                continue
            span = s.ranges.setdefault(metric, {"min": value, "max": value})
            span["min"], span["max"] = min(span["min"], value), max(span["max"], value)
    return list(by_session.values())


# -- phases -------------------------------------------------------------------------------


def phase_at(when: datetime, transitions: Sequence[tuple[datetime, str]]) -> str:
    """The patient's phase at `when`, from PhaseAdvanced (occurred_at, to_phase) in order."""
    phase = DEFAULT_PHASE
    for at, to_phase in transitions:
        if at <= when:
            phase = to_phase
        else:
            break
    return phase
