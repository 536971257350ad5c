"""The treatment floor's card: what a nurse reads at a glance, derived from the
scheduling session (booking, room, status) and monitoring's window (doses,
readings, alerts, discharge blockers). Pure: no I/O, `now` is a parameter.

Nothing here decides a clinical question: discharge blockers and alerts are
monitoring's answers, shown as they are. The console only names the state and
counts down to the time monitoring gave (SPR-MON-3 / KET-DIS-6 `discharge_allowed_at`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from kap_shared.events.enums import ClearedBy

# SPR-MON-1 (rulebook default): a BP check 40 minutes after the first dose, overdue
# once its +/-10 minute window has passed. Monitoring owns the timers; the card shows them.
BP_CHECK_AFTER = timedelta(minutes=40)
BP_CHECK_OVERDUE_AFTER = timedelta(minutes=50)


class CardState(StrEnum):
    BOOKED = "booked"
    CHECKED_IN = "checked in"
    DOSING = "dosing"
    OBSERVING = "observing"
    READY = "ready for discharge"
    DISCHARGED = "discharged"
    COMPLETED = "completed"
    CANCELLED = "cancelled"


@dataclass(frozen=True)
class VitalMark:
    """The latest value of one vital and whether it is outside the discharge range."""

    metric: str
    label: str
    value: str
    out_of_range: bool
    rule_id: str | None
    recorded_at: datetime


@dataclass(frozen=True)
class Card:
    session_id: str
    patient_id: str
    site_id: str
    room_id: str
    label: str
    phase: str
    starts_at: datetime
    state: CardState
    first_dose_at: datetime | None
    minutes_since_first_dose: int | None
    discharge_allowed_at: datetime | None
    bp_check_due_at: datetime | None
    bp_check_overdue: bool
    vitals: list[VitalMark]
    alerts: list[dict[str, Any]]
    escalations: list[dict[str, Any]]
    blockers: list[dict[str, Any]]
    discharge_allowed: bool
    monitored: bool
    # Every remaining blocker is one the signed stability assessment clears.
    ready_to_sign: bool = False
    concerns: list[dict[str, Any]] = field(default_factory=list)
    # Rule ids holding further doses (MON-DOSE gates): open critical alerts, MBC-1.
    doses_held_by: list[str] = field(default_factory=list)
    route: str | None = None
    agent: str | None = None
    dissociation: str | None = None
    display_name: str | None = None
    warnings: list[str] = field(default_factory=list)

    @property
    def critical(self) -> bool:
        return any(a.get("severity") == "critical" for a in self.alerts)


# Display ranges: the discharge criteria of the rulebook (KET-DIS-2/3/4), so an
# out-of-range mark means "this value would block discharge". Labels are for people.
_LABELS = {
    "bp_systolic": "BP sys",
    "bp_diastolic": "BP dia",
    "heart_rate": "HR",
    "spo2": "SpO\u2082",
    "respiratory_rate": "RR",
    "sedation_moaas": "MOAA/S",
}
_UNITS = {
    "bp_systolic": " mmHg",
    "bp_diastolic": " mmHg",
    "heart_rate": "/min",
    "spo2": " %",
    "respiratory_rate": "/min",
    "sedation_moaas": "",
}


def cleared_by_signing(blocker: dict[str, Any]) -> bool:
    """Monitoring says what clears each blocker (`cleared_by`); the signed stability
    assessment clears those it names `signature` (a blocker without the field does not)."""
    return blocker.get("cleared_by") == ClearedBy.SIGNATURE


def _out_of_range(metric: str, value: float) -> str | None:
    """The rule a value breaks (for the mark's explanation), or None."""
    checks = {
        "spo2": value < 92,
        "bp_systolic": value > 160,
        "bp_diastolic": value > 100,
        "heart_rate": value > 110,
        "respiratory_rate": not 10 <= value <= 24,
        "sedation_moaas": value < 5,
    }
    rules = {"spo2": "KET-DIS-2", "sedation_moaas": "KET-DIS-4"}
    return rules.get(metric, "KET-DIS-3") if checks.get(metric) else None


def vital_marks(latest: dict[str, Any]) -> list[VitalMark]:
    marks = []
    for metric, label in _LABELS.items():
        if metric not in latest:
            continue
        value = float(latest[metric]["value"])
        rule = _out_of_range(metric, value)
        marks.append(
            VitalMark(
                metric=metric,
                label=label,
                value=f"{value:g}{_UNITS[metric]}",
                out_of_range=rule is not None,
                rule_id=rule,
                recorded_at=datetime.fromisoformat(latest[metric]["recorded_at"]),
            )
        )
    return marks


def _dissociation(latest: dict[str, Any] | None) -> str | None:
    """The latest coded assessment (SPR-GOAL), with its CADSS total when recorded."""
    if not latest or not latest.get("value"):
        return None
    cadss = latest.get("cadss_total")
    return str(latest["value"]) + (f" (CADSS {cadss})" if cadss is not None else "")


def _when(value: Any) -> datetime | None:
    return datetime.fromisoformat(value) if isinstance(value, str) else None


def card_state(booking: dict[str, Any], window: dict[str, Any] | None, now: datetime) -> CardState:
    status = booking["status"]
    if status == "cancelled":
        return CardState.CANCELLED
    if booking.get("discharge_cleared_at") or (window and window.get("status") == "discharged"):
        return CardState.DISCHARGED
    if status == "completed":
        return CardState.COMPLETED
    if status == "scheduled":
        return CardState.BOOKED
    if window is None or not window.get("doses"):
        return CardState.CHECKED_IN
    if window["discharge"]["allowed"]:
        return CardState.READY
    dosing_end = _when(window.get("dosing_end_at"))
    if dosing_end is not None and now < dosing_end:
        return CardState.DOSING
    return CardState.OBSERVING


def build_card(
    booking: dict[str, Any],
    window: dict[str, Any] | None,
    escalations: list[dict[str, Any]],
    now: datetime,
    display_name: str | None = None,
) -> Card:
    state = card_state(booking, window, now)
    window = window or {}
    first_dose = _when(window.get("first_dose_at"))
    blockers: list[dict[str, Any]] = list(window.get("discharge", {}).get("blockers", []))
    allowed_at = next(
        (_when(b.get("discharge_allowed_at")) for b in blockers if b.get("discharge_allowed_at")),
        None,
    )
    due = first_dose + BP_CHECK_AFTER if first_dose else None
    bp_done = bool(window.get("bp_check_done"))
    active = state in (CardState.DOSING, CardState.OBSERVING, CardState.READY)
    alerts = list(window.get("open_alerts", []))
    concerns = list(window.get("open_safety_concerns", []))
    shown_blockers = blockers if state not in (CardState.DISCHARGED, CardState.BOOKED) else []
    return Card(
        session_id=booking["session_id"],
        patient_id=booking["patient_id"],
        site_id=booking["site_id"],
        room_id=booking["room_id"],
        label=booking.get("label", booking["phase"]),
        phase=booking["phase"],
        starts_at=datetime.fromisoformat(booking["starts_at"]),
        state=state,
        first_dose_at=first_dose,
        minutes_since_first_dose=int((now - first_dose) / timedelta(minutes=1))
        if first_dose and active
        else None,
        discharge_allowed_at=allowed_at if active else None,
        bp_check_due_at=due if (due and active and not bp_done) else None,
        bp_check_overdue=bool(
            first_dose and active and not bp_done and now > first_dose + BP_CHECK_OVERDUE_AFTER
        ),
        vitals=vital_marks(window.get("latest", {})),
        alerts=alerts,
        escalations=[e for e in escalations if e.get("status") == "open"],
        blockers=shown_blockers,
        discharge_allowed=bool(window.get("discharge", {}).get("allowed")),
        monitored=bool(window),
        display_name=display_name,
        ready_to_sign=bool(shown_blockers) and all(cleared_by_signing(b) for b in shown_blockers),
        concerns=concerns,
        doses_held_by=sorted(
            {str(a["rule_id"]) for a in alerts if a.get("severity") == "critical"}
            | {str(c.get("rule_id", "MBC-1")) for c in concerns}
        ),
        route=window.get("route"),
        agent=window.get("agent"),
        dissociation=_dissociation(window.get("dissociation")),
    )
