"""Dose gates (clinical rulebook 1.2, 1.3, 2.4, 2.6; issue 8), pure.

`dose_blockers` lists every reason a dose may not be recorded now; an empty list
lets it through. Each blocker cites its rule and says what would clear it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from kap_shared.events.enums import Agent, ConcomitantMedicationClass, Route
from kap_shared.validation import in_the_future

from .gates import Blocker
from .rules import (
    KET_DIS_6,
    MBC_1,
    MON_DOSE_1,
    MON_DOSE_2,
    MON_DOSE_3,
    SPR_ADM_1,
    SPR_ADM_2,
    SPR_ADM_3,
    SPR_PRE_3,
    SPR_PRE_4,
    SPR_PRE_5,
    SPR_PRE_7,
    MonitoringRules,
)


@dataclass(frozen=True)
class DoseRequest:
    agent: Agent
    route: Route
    dose_mg: float
    device_number: int | None
    administered_at: datetime
    dosing_ended_at: datetime | None = None
    concomitant_medications: Sequence[ConcomitantMedicationClass] | None = None
    nasal_medication_used: bool | None = None
    nasal_medication_at: datetime | None = None


@dataclass(frozen=True)
class DoseFacts:
    """What monitoring knows of the session when a dose is charted."""

    checked_in_at: datetime | None
    # The plan's route (TreatmentPlanCreated); None when monitoring has not seen it.
    plan_route: Route | None
    session_agent: Agent | None = None
    # Esketamine devices already recorded in this session: number -> administered_at.
    devices: Mapping[int, datetime] = field(default_factory=dict)
    first_dose_at: datetime | None = None
    predose_decision_pending: bool = False
    predose_decision: str | None = None
    bp_before_dose: bool = False
    # Open critical alerts (alert_id, rule_id) and unresolved in-session concerns.
    open_critical: Sequence[tuple[str, str]] = ()
    open_concerns: Sequence[tuple[str, str]] = ()
    # SPR-ADM-3: the largest esketamine total (mg) of the patient's earlier sessions.
    earlier_session_max_mg: float = 0.0


def agent_of(route: Route) -> Agent:
    return Agent.ESKETAMINE if route is Route.INTRANASAL_ESKETAMINE else Agent.KETAMINE


def dosing_end(dose: DoseRequest, rules: MonitoringRules) -> tuple[datetime | None, str]:
    """KET-DIS-6's clock start: the charted end of dosing, or the route's configured
    default duration; None when neither exists (an infusion must chart its end).
    Esketamine (SPR-MON-3 counts from the first device) ends when given."""
    if dose.dosing_ended_at is not None:
        return dose.dosing_ended_at, "charted"
    if dose.agent is Agent.ESKETAMINE:
        return dose.administered_at, "device"
    minutes = rules.dosing_default_minutes.get(dose.route)
    if minutes is None:
        return None, "missing"
    return dose.administered_at + timedelta(minutes=minutes), "default"


def dose_blockers(
    dose: DoseRequest, facts: DoseFacts, rules: MonitoringRules, now: datetime
) -> list[Blocker]:
    found: list[Blocker] = []
    found.extend(_clock(dose, facts, rules, now))
    found.extend(_plan(dose, facts))
    found.extend(_holds(facts, rules))
    found.extend(_predose(dose, facts, rules))
    if dose.agent is Agent.ESKETAMINE:
        found.extend(_esketamine(dose, facts, rules))
    elif dosing_end(dose, rules)[0] is None:
        found.append(
            Blocker(
                KET_DIS_6,
                f"a {dose.route.value} dose needs the end of dosing: KET-DIS-6 counts the "
                "observation from it",
                "chart dosing_ended_at (the end of the infusion)",
            )
        )
    return found


def _clock(
    dose: DoseRequest, facts: DoseFacts, rules: MonitoringRules, now: datetime
) -> list[Blocker]:
    """MON-DOSE-2: the observation clock cannot be moved: a dose lies inside the
    session's monitoring window (check-in minus the charting tolerance .. now)."""
    out: list[Blocker] = []
    tolerance = timedelta(minutes=rules.dose_charting_tolerance_minutes)
    if in_the_future(dose.administered_at, now):
        out.append(
            Blocker(
                MON_DOSE_2,
                "administered_at is in the future",
                "chart the dose when it has been given, with the time it was given",
                {"administered_at": dose.administered_at.isoformat()},
            )
        )
    elif facts.checked_in_at is not None and dose.administered_at < facts.checked_in_at - tolerance:
        earliest = facts.checked_in_at - tolerance
        out.append(
            Blocker(
                MON_DOSE_2,
                "administered_at is before the session's check-in: a dose cannot be "
                "backdated out of its monitoring window",
                f"give administered_at at or after {earliest.isoformat()}",
                {
                    "administered_at": dose.administered_at.isoformat(),
                    "earliest_allowed": earliest.isoformat(),
                },
            )
        )
    end = dose.dosing_ended_at
    if end is not None and in_the_future(end, now):
        out.append(
            Blocker(
                MON_DOSE_2,
                "dosing_ended_at is in the future",
                "chart the dose when dosing has ended",
                {"dosing_ended_at": end.isoformat()},
            )
        )
    return out


def _plan(dose: DoseRequest, facts: DoseFacts) -> list[Blocker]:
    """MON-DOSE-3 (agent and route follow the plan) and MON-DOSE-1 (one agent a session;
    each esketamine device once)."""
    out: list[Blocker] = []
    if facts.plan_route is None:
        out.append(
            Blocker(
                MON_DOSE_3,
                "the patient's treatment plan (its route) is not known to monitoring",
                "wait for the plan from scheduling (TreatmentPlanCreated) and retry",
            )
        )
    elif dose.route is not facts.plan_route or dose.agent is not agent_of(facts.plan_route):
        out.append(
            Blocker(
                MON_DOSE_3,
                f"the plan's route is {facts.plan_route.value} "
                f"({agent_of(facts.plan_route).value}); this dose is {dose.route.value} "
                f"({dose.agent.value})",
                "chart the route and agent of the plan, or have the prescriber change the plan",
                {"plan_route": facts.plan_route.value},
            )
        )
    if facts.session_agent is not None and facts.session_agent is not dose.agent:
        out.append(
            Blocker(
                MON_DOSE_1,
                f"this session's doses are {facts.session_agent.value}; a session has one agent",
                "chart the session's agent",
            )
        )
    if dose.device_number is not None and dose.device_number in facts.devices:
        out.append(
            Blocker(
                MON_DOSE_1,
                f"esketamine device {dose.device_number} is already recorded",
                "chart the next device number",
            )
        )
    return out


def _holds(facts: DoseFacts, rules: MonitoringRules) -> list[Blocker]:
    """Dosing stops while safety says stop: an open critical alert (its own rule id),
    an unresolved in-session safety concern (MBC-1)."""
    out: list[Blocker] = []
    if rules.hold_doses_on_critical_alert:
        for alert_id, rule_id in facts.open_critical:
            out.append(
                Blocker(
                    rule_id,
                    f"critical alert {rule_id} is open: dosing is on hold",
                    f"a prescriber assesses the patient and resolves alert {alert_id} "
                    "with a coded reason",
                    {"alert_id": alert_id},
                )
            )
    if rules.hold_doses_on_safety_concern:
        for concern_id, rule_id in facts.open_concerns:
            out.append(
                Blocker(
                    rule_id or MBC_1,
                    f"safety concern {rule_id} raised in this session is unresolved: "
                    "dosing is on hold",
                    f"a prescriber resolves safety concern {concern_id} with a coded decision",
                    {"concern_id": concern_id},
                )
            )
    return out


def _predose(dose: DoseRequest, facts: DoseFacts, rules: MonitoringRules) -> list[Blocker]:
    out: list[Blocker] = []
    if facts.predose_decision_pending:
        out.append(
            Blocker(
                SPR_PRE_5,
                "pre-dose blood pressure is above the limit: a prescriber must document "
                "proceed or defer before dosing",
                "a prescriber records the pre-dose decision (proceed)",
            )
        )
    elif facts.predose_decision == "defer" and facts.first_dose_at is None:
        out.append(
            Blocker(
                SPR_PRE_5,
                "the prescriber deferred dosing for this session",
                "a prescriber records a new decision (proceed) after a recheck",
            )
        )
    if (
        facts.first_dose_at is None
        and dose.agent in rules.predose_bp_required_agents
        and not facts.bp_before_dose
    ):
        out.append(
            Blocker(
                SPR_PRE_4,
                "no blood pressure is recorded before the first dose",
                "record a blood pressure before dosing",
            )
        )
    return out


def _esketamine(dose: DoseRequest, facts: DoseFacts, rules: MonitoringRules) -> list[Blocker]:
    out: list[Blocker] = []
    first_of_session = not facts.devices
    if first_of_session:
        if dose.nasal_medication_used is None:
            out.append(
                Blocker(
                    SPR_PRE_3,
                    "with the first device, say whether a nasal corticosteroid or "
                    "decongestant was used today",
                    "send nasal_medication_used (and nasal_medication_at when true)",
                )
            )
        elif dose.nasal_medication_used:
            gap = rules.nasal_medication_min_minutes_before
            taken = dose.nasal_medication_at
            if taken is None or dose.administered_at - taken < timedelta(minutes=gap):
                out.append(
                    Blocker(
                        SPR_PRE_3,
                        f"a nasal corticosteroid or decongestant must be used at least {gap} "
                        "minutes before esketamine",
                        f"send nasal_medication_at, and dose at least {gap} minutes after it",
                        {"minimum_minutes": gap},
                    )
                )
        if (
            dose.agent in rules.concomitant_medications_required_agents
            and dose.concomitant_medications is None
        ):
            out.append(
                Blocker(
                    SPR_PRE_7,
                    "concomitant medication classes are recorded with the session's first "
                    "device (REMS Patient Monitoring Form)",
                    "send concomitant_medications: the classes taken ([] for none)",
                )
            )
    if dose.dose_mg != rules.esketamine_device_mg:
        out.append(
            Blocker(
                SPR_ADM_1,
                f"one device is {rules.esketamine_device_mg:g} mg; this record says "
                f"{dose.dose_mg:g} mg",
                f"chart each device on its own, {rules.esketamine_device_mg:g} mg each",
                {"device_mg": rules.esketamine_device_mg},
            )
        )
    spacing = timedelta(minutes=rules.esketamine_device_spacing_minutes)
    for number, at in sorted(facts.devices.items()):
        if abs(dose.administered_at - at) < spacing:
            out.append(
                Blocker(
                    SPR_ADM_2,
                    f"device {dose.device_number} is less than "
                    f"{rules.esketamine_device_spacing_minutes:g} minutes from device {number}",
                    f"give it at or after {(at + spacing).isoformat()}",
                    {"next_allowed_at": (at + spacing).isoformat()},
                )
            )
            break
    if (
        dose.device_number is not None
        and dose.device_number >= rules.esketamine_titration_device
        and facts.earlier_session_max_mg < rules.esketamine_titration_mg
    ):
        total = rules.esketamine_device_mg * dose.device_number
        out.append(
            Blocker(
                SPR_ADM_3,
                f"{total:g} mg only after an earlier session at "
                f"{rules.esketamine_titration_mg:g} mg (the first induction dose is "
                f"{rules.esketamine_titration_mg:g} mg)",
                f"stop at {rules.esketamine_titration_mg:g} mg in this session",
                {"earlier_session_max_mg": facts.earlier_session_max_mg},
            )
        )
    return out
