"""The routing table: which event reaches whom, on which channels, how urgently.

| event (when) | to | priority | channels | escalates to |
|---|---|---|---|---|
| VitalsAlert (severity critical) | session team | stat | sms, in_app | site levels |
| VitalsAlert (severity warning) | session team | urgent | in_app | - |
| VitalsAlert (severity info) | nobody | | | |
| VitalsAlertResolved | session team | routine | in_app | - |
| SafetyConcernRaised (MBC-1) | patient team | urgent | sms, in_app | - |
| PatientScreened (needs_review, MBC-1) | site prescribers + therapist | urgent | in_app, email | |
| PatientScreened (needs_review, unreviewed) | site prescribers | routine | in_app, email | - |
| PatientScreened (other outcomes, reviewed) | nobody | | | |
| TreatmentPlanCreated | plan team | routine | in_app | - |
| SessionScheduled | session team | routine | in_app, email | - |
| SessionRescheduled | session team | routine | in_app, email | - |
| SessionCancelled | session team | routine | in_app, email | - |
| IntegrationOverdue (KAP-2) | the event's therapist | routine | in_app, email | coordinators |
| PmfReminder (SPR-PMF-1) | PMF responsible | routine | in_app, email | - |
| PmfOverdue (SPR-PMF-1) | PMF responsible | urgent | in_app, email | site levels |
| ObservationDue (SPR-MON-1) | observers | urgent | in_app | - |

* session team: the session's prescriber and therapist (SessionScheduled);
* patient team / plan team: the plan's prescriber and therapist (TreatmentPlanCreated);
* site prescribers: recipients registered with role prescriber at the site;
* patient's therapist: the plan's therapist, when the patient has a plan (a
  re-screening with PHQ-9 item 9 >= 1 reaches the therapist too, MBC-1);
* observers: the site's nurses, else the session's therapist (sessions name no nurse);
* PMF responsible: the PMF's session's prescriber (else the
  plan's) and the recipients registered with role coordinator at the site;
* site levels: PUT /sites/{site_id}/escalation; coordinators: the site's
  coordinators after `integration_overdue_escalation_seconds` (see escalation.py).

Fallbacks when a care team is unknown (events on different topics are not
ordered relative to each other):

* "the session's prescriber and therapist": the session's (SessionScheduled);
  a session without `prescriber_id` takes the plan's prescriber; an unknown
  session takes the patient's plan team (TreatmentPlanCreated); for safety
  events (urgent and stat) an unknown team falls back to the site's prescribers.
* "the site's prescribers": recipients registered with role prescriber at the
  site (PUT /recipients); when none are registered, the prescribers of the
  site's known care teams.

Priorities are FHIR CommunicationRequest priorities (clinical rulebook 5.2).
Channels listed are the defaults: a recipient's preferences may add channels
(any priority) or replace them (routine only); in-app is always included.

Messages carry ids, codes and numbers only: no names, contact details, dates
or free text (VitalsAlert's `message` is free text and is never copied).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import StrEnum

from kap_shared.events import (
    EVENT_TYPES,
    Envelope,
    IntegrationOverdue,
    PatientScreened,
    TreatmentPlanCreated,
    VitalsAlert,
)
from kap_shared.events.enums import Channel, ScreeningOutcome, Severity
from kap_shared.events.records import PmfOverdue, PmfReminder


class Priority(StrEnum):
    """FHIR CommunicationRequest priorities (clinical rulebook section 5.2)."""

    ROUTINE = "routine"
    URGENT = "urgent"
    ASAP = "asap"
    STAT = "stat"

    @property
    def rank(self) -> int:
        return _RANK[self]


_RANK = {Priority.ROUTINE: 0, Priority.URGENT: 1, Priority.ASAP: 2, Priority.STAT: 3}


class Audience(StrEnum):
    """Who a rule addresses; resolved against the routing context."""

    SESSION_TEAM = "the session's prescriber and therapist"
    PATIENT_TEAM = "the patient's prescriber and therapist"
    PLAN_TEAM = "the plan's therapist and prescriber"
    SITE_PRESCRIBERS = "the site's prescribers"
    SITE_PRESCRIBERS_AND_THERAPIST = "the site's prescribers and the patient's therapist"
    EVENT_THERAPIST = "the event's therapist"
    OBSERVER = "the site's nurses, else the session's therapist"
    # Handoffs (issue 11), resolved by handlers/handoffs.py from the care-team view.
    PLAN_THERAPIST = "the plan's therapist"
    PLAN_PRESCRIBER = "the plan's prescriber"
    EVENT_PRESCRIBER = "the event's prescriber"
    EACH_CLINICIAN = "each clinician with routine handoffs waiting"
    NEXT_CLINICIAN = "the therapist of the patient's next session, else the plan's therapist"
    PMF_RESPONSIBLE = "the session's prescriber and the site's coordinators"  # SPR-PMF-1


class EscalationKind(StrEnum):
    """Where an unacknowledged notification escalates to."""

    SITE_LEVELS = "site_levels"  # PUT /sites/{site_id}/escalation
    SITE_COORDINATORS = "site_coordinators"  # the site's coordinators, after a rule delay


@dataclass(frozen=True)
class Rule:
    """One row of the routing table."""

    key: str
    event_type: str
    when: str
    audience: Audience
    priority: Priority
    channels: tuple[Channel, ...]
    escalation: EscalationKind | None = None


IN_APP, SMS, EMAIL = Channel.IN_APP, Channel.SMS, Channel.EMAIL

ROUTING_TABLE: tuple[Rule, ...] = (
    Rule(
        "vitals-critical",
        "VitalsAlert",
        "severity critical",
        Audience.SESSION_TEAM,
        Priority.STAT,
        (SMS, IN_APP),
        EscalationKind.SITE_LEVELS,
    ),
    Rule(
        "vitals-warning",
        "VitalsAlert",
        "severity warning",
        Audience.SESSION_TEAM,
        Priority.URGENT,
        (IN_APP,),
    ),
    Rule(
        "vitals-resolved",
        "VitalsAlertResolved",
        "always",
        Audience.SESSION_TEAM,
        Priority.ROUTINE,
        (IN_APP,),
    ),
    Rule(
        "safety-concern",
        "SafetyConcernRaised",
        "always (MBC-1)",
        Audience.PATIENT_TEAM,
        Priority.URGENT,
        (SMS, IN_APP),
    ),
    Rule(
        "screening-review-risk",
        "PatientScreened",
        "needs_review, not yet reviewed, reasons include MBC-1",
        Audience.SITE_PRESCRIBERS_AND_THERAPIST,
        Priority.URGENT,
        (IN_APP, EMAIL),
    ),
    Rule(
        "screening-review",
        "PatientScreened",
        "needs_review, not yet reviewed",
        Audience.SITE_PRESCRIBERS,
        Priority.ROUTINE,
        (IN_APP, EMAIL),
    ),
    Rule(
        "plan-created",
        "TreatmentPlanCreated",
        "always",
        Audience.PLAN_TEAM,
        Priority.ROUTINE,
        (IN_APP,),
    ),
    Rule(
        "session-scheduled",
        "SessionScheduled",
        "always",
        Audience.SESSION_TEAM,
        Priority.ROUTINE,
        (IN_APP, EMAIL),
    ),
    Rule(
        "session-rescheduled",
        "SessionRescheduled",
        "always",
        Audience.SESSION_TEAM,
        Priority.ROUTINE,
        (IN_APP, EMAIL),
    ),
    Rule(
        "session-cancelled",
        "SessionCancelled",
        "always",
        Audience.SESSION_TEAM,
        Priority.ROUTINE,
        (IN_APP, EMAIL),
    ),
    Rule(
        "integration-overdue",
        "IntegrationOverdue",
        "always (KAP-2)",
        Audience.EVENT_THERAPIST,
        Priority.ROUTINE,
        (IN_APP, EMAIL),
        EscalationKind.SITE_COORDINATORS,
    ),
    # -- records: the REMS Patient Monitoring Form (SPR-PMF-1) -------------------------
    Rule(
        "pmf-reminder",
        "PmfReminder",
        "always (SPR-PMF-1)",
        Audience.PMF_RESPONSIBLE,
        Priority.ROUTINE,
        (IN_APP, EMAIL),
    ),
    Rule(
        "pmf-overdue",
        "PmfOverdue",
        "always (SPR-PMF-1)",
        Audience.PMF_RESPONSIBLE,
        Priority.URGENT,
        (IN_APP, EMAIL),
        EscalationKind.SITE_LEVELS,
    ),
    # -- end of records' rows -------------------------------------------------------------
    Rule(
        "observation-due",
        "ObservationDue",
        "always (SPR-MON-1)",
        Audience.OBSERVER,
        Priority.URGENT,
        (IN_APP,),
    ),
)
# Handoffs across phases (issue 11): one contiguous block, handled in handlers/handoffs.py.
# Routine rows go to the inbox at once and wait for the recipient's daily digest
# (in-app and email) instead of paging; urgent rows go at once on every channel.
HANDOFF_TABLE: tuple[Rule, ...] = (
    Rule(
        "integration-window",
        "SessionCompleted | DischargeCleared",
        "a dosing session ended, first of the two (KAP-2 window with its deadline)",
        Audience.PLAN_THERAPIST,
        Priority.ROUTINE,
        (IN_APP,),
    ),
    Rule(
        "integration-warning",
        "timer integration-warning",
        "48 h after the dosing session ended, no integration session booked (KAP-2)",
        Audience.PLAN_THERAPIST,
        Priority.URGENT,
        (IN_APP, EMAIL),
    ),
    Rule(
        "integration-completed",
        "SessionCompleted",
        "integration session, the next dose is clear (no open dosing hold)",
        Audience.PLAN_PRESCRIBER,
        Priority.ROUTINE,
        (IN_APP,),
    ),
    Rule(
        "integration-completed-hold",
        "SessionCompleted",
        "integration session, dosing on hold (SCH-HOLD-1)",
        Audience.PLAN_PRESCRIBER,
        Priority.URGENT,
        (IN_APP, EMAIL),
    ),
    Rule(
        "phase-advanced",
        "PhaseAdvanced",
        "always (to integration: the dosing course is complete)",
        Audience.PATIENT_TEAM,
        Priority.ROUTINE,
        (IN_APP,),
    ),
    Rule(
        "outcome-remission",
        "OutcomeRecorded",
        "PHQ-9 remission against baseline, first time (MBC-3)",
        Audience.PATIENT_TEAM,
        Priority.ROUTINE,
        (IN_APP,),
    ),
    Rule(
        "outcome-response",
        "OutcomeRecorded",
        "PHQ-9 response against baseline, first time (MBC-3)",
        Audience.PATIENT_TEAM,
        Priority.ROUTINE,
        (IN_APP,),
    ),
    Rule(
        "outcome-worsening-phq9",
        "OutcomeRecorded",
        "PHQ-9 total >= 20 or a rise >= 5 from the previous one (MBC-2)",
        Audience.PATIENT_TEAM,
        Priority.URGENT,
        (IN_APP, EMAIL),
    ),
    Rule(
        "outcome-worsening",
        "OutcomeRecorded",
        "GAD-7 total >= 15, or PCL-5 rise >= 10 (MBC-4)",
        Audience.PLAN_THERAPIST,
        Priority.URGENT,
        (IN_APP, EMAIL),
    ),
    Rule(
        "induction-no-response",
        "OutcomeRecorded",
        "PHQ-9 without response after the end of induction (SPR-SCH-1, MBC-3)",
        Audience.PLAN_PRESCRIBER,
        Priority.URGENT,
        (IN_APP, EMAIL),
    ),
    Rule(
        "induction-review",
        "InductionReviewDue",
        "always (SPR-SCH-1), with the latest PHQ-9 against baseline if known",
        Audience.EVENT_PRESCRIBER,
        Priority.URGENT,
        (IN_APP, EMAIL),
    ),
    Rule(
        "measure-due",
        "timer measure-due",
        "a PHQ-9 / GAD-7 / PCL-5 falls due (rulebook 3.2; reset by treatment and by measuring)",
        Audience.NEXT_CLINICIAN,
        Priority.ROUTINE,
        (IN_APP,),
    ),
    Rule(
        "digest",
        "timer digest",
        "at the site's digest time, for each clinician with routine handoffs waiting",
        Audience.EACH_CLINICIAN,
        Priority.ROUTINE,
        (IN_APP, EMAIL),
    ),
)

RULES: dict[str, Rule] = {rule.key: rule for rule in ROUTING_TABLE + HANDOFF_TABLE}

# The events the routing table names, which also carry the care-team facts routing reads:
# what notifications' consumer hands to the notifier (the handoff rows have their own).
ROUTED_EVENTS: tuple[type[Envelope], ...] = tuple(
    EVENT_TYPES[event_type] for event_type in dict.fromkeys(r.event_type for r in ROUTING_TABLE)
)
# The row of each event type the table routes one way only (rule_for decides the others).
_ROWS_PER_TYPE = Counter(r.event_type for r in ROUTING_TABLE)
_ONLY_ROW: dict[str, Rule] = {
    r.event_type: r for r in ROUTING_TABLE if _ROWS_PER_TYPE[r.event_type] == 1
}


# -- routing context -----------------------------------------------------------------------


@dataclass(frozen=True)
class Team:
    """A care team as notifications knows it (from scheduling's events)."""

    prescriber_id: str | None
    therapist_id: str | None


@dataclass(frozen=True)
class RoutingContext:
    """What the routing needs to know besides the event, loaded by the handler."""

    session: Team | None = None  # the session's team (SessionScheduled)
    patient: Team | None = None  # the patient's plan team (TreatmentPlanCreated)
    site_prescribers: tuple[str, ...] = ()
    site_nurses: tuple[str, ...] = ()
    site_coordinators: tuple[str, ...] = ()  # SPR-PMF-1


@dataclass(frozen=True)
class Message:
    """What to tell whom: one text, several recipients, default channels."""

    rule: Rule
    recipients: tuple[str, ...]
    title: str
    body: str
    escalation: EscalationKind | None = field(default=None)

    @property
    def priority(self) -> Priority:
        return self.rule.priority

    @property
    def channels(self) -> tuple[Channel, ...]:
        return self.rule.channels


def rule_for(event: Envelope) -> Rule | None:
    """The routing-table row that applies to `event` (None: nobody needs to know)."""
    if isinstance(event, VitalsAlert):
        return {
            Severity.CRITICAL: RULES["vitals-critical"],
            Severity.WARNING: RULES["vitals-warning"],
        }.get(event.data.severity)
    if isinstance(event, PatientScreened):
        data = event.data
        if data.outcome is not ScreeningOutcome.NEEDS_REVIEW or data.reviewed_by is not None:
            return None
        return RULES["screening-review-risk" if "MBC-1" in data.reasons else "screening-review"]
    return _ONLY_ROW.get(event.event_type)


def route(event: Envelope, context: RoutingContext) -> Message | None:
    """The message an event calls for; None when no row applies. The message's
    recipients are empty when the row applies but its audience is unknown."""
    rule = rule_for(event)
    if rule is None:
        return None
    recipients = _audience(rule, event, context)
    title, body = _text(event)
    return Message(rule, recipients, title, body, rule.escalation)


def _unique(ids: Iterable[str | None]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(i for i in ids if i))


def _audience(rule: Rule, event: Envelope, ctx: RoutingContext) -> tuple[str, ...]:
    safety = rule.priority.rank >= Priority.URGENT.rank
    match rule.audience:
        case Audience.PMF_RESPONSIBLE:
            return pmf_audience(ctx)
        case Audience.PLAN_TEAM:
            assert isinstance(event, TreatmentPlanCreated)
            return _unique((event.data.therapist_id, event.data.prescriber_id))
        case Audience.EVENT_THERAPIST:
            assert isinstance(event, IntegrationOverdue)
            return _unique((event.data.therapist_id,))
        case Audience.SITE_PRESCRIBERS:
            return _unique(ctx.site_prescribers)
        case Audience.SITE_PRESCRIBERS_AND_THERAPIST:
            therapist = ctx.patient.therapist_id if ctx.patient else None
            return _unique((*ctx.site_prescribers, therapist))
        case Audience.PATIENT_TEAM:
            team = ctx.patient or ctx.session
            found = _unique((team.prescriber_id, team.therapist_id)) if team else ()
            return found or (_unique(ctx.site_prescribers) if safety else ())
        case Audience.SESSION_TEAM:
            teams = [t for t in (ctx.session, ctx.patient) if t is not None]
            prescriber = next((t.prescriber_id for t in teams if t.prescriber_id), None)
            therapist = next((t.therapist_id for t in teams if t.therapist_id), None)
            found = _unique((prescriber, therapist))
            return found or (_unique(ctx.site_prescribers) if safety else ())
        case Audience.OBSERVER:
            if ctx.site_nurses:
                return _unique(ctx.site_nurses)
            team = ctx.session or ctx.patient
            return _unique((team.therapist_id,)) if team else ()
    return ()  # pragma: no cover - every audience is handled above


# -- texts: ids, codes and numbers only -------------------------------------------------------


def _vitals_alert(e: VitalsAlert) -> tuple[str, str]:
    d = e.data
    label = {Severity.CRITICAL: "CRITICAL vitals alert", Severity.WARNING: "Vitals warning"}
    return (
        label.get(d.severity, "Vitals alert"),
        f"Session {d.session_id}, patient {e.patient_id}: {d.metric} {d.value:g} "
        f"(threshold {d.threshold:g}, rule {d.rule_id}). Alert {d.alert_id}. "
        "Acknowledge in the KAP inbox.",
    )


def _screened(e: PatientScreened) -> tuple[str, str]:
    d = e.data
    reasons = ", ".join(d.reasons) or "none"
    return (
        "Screening needs prescriber review",
        f"Patient {e.patient_id}, screening {d.screening_id} ({d.route.value}): "
        f"rules {reasons}. Review and decide.",
    )


# Title and body template per event type; the body is formatted with the event as `e` and
# its data as `d`. Events whose text needs more than their fields have a function above.
_TEXTS: dict[str, tuple[str, str]] = {
    "VitalsAlertResolved": (
        "Vitals alert resolved",
        "Alert {d.alert_id} in session {d.session_id}, patient {e.patient_id}, is resolved.",
    ),
    "SafetyConcernRaised": (
        "Safety concern",
        "Patient {e.patient_id}: {d.source} = {d.value:g} (severity {d.severity.value}). "
        "Clinical risk assessment needed (MBC-1).",
    ),
    "TreatmentPlanCreated": (
        "New patient assigned",
        "Patient {e.patient_id} starts plan {d.plan_id} ({d.protocol}, "
        "{d.planned_dosing_sessions} dosing sessions). Next: book the first "
        "preparation session.",
    ),
    "SessionScheduled": (
        "Session booked",
        "Session {d.session_id} ({d.phase.value} #{d.sequence}) for patient {e.patient_id}, "
        "plan {d.plan_id}, room {d.room_id}. See the schedule for the time.",
    ),
    "SessionRescheduled": (
        "Session moved",
        "Session {d.session_id} ({d.phase.value}) for patient {e.patient_id} has a new time. "
        "See the schedule.",
    ),
    "SessionCancelled": (
        "Session cancelled",
        "Session {d.session_id} ({d.phase.value}) for patient {e.patient_id} is cancelled.",
    ),
    "IntegrationOverdue": (
        "Integration session overdue",
        "Patient {e.patient_id}: no integration session booked after dosing session "
        "{d.dosing_session_id} (KAP-2). Book one.",
    ),
    "ObservationDue": (
        "Observation due",
        "Session {d.session_id}, patient {e.patient_id}: {d.kind} is due.",
    ),
}


def _text(event: Envelope) -> tuple[str, str]:
    if isinstance(event, PmfReminder | PmfOverdue):
        return pmf_text(event)
    if isinstance(event, VitalsAlert):
        return _vitals_alert(event)
    if isinstance(event, PatientScreened):
        return _screened(event)
    if (template := _TEXTS.get(event.event_type)) is None:
        raise TypeError(f"no text for {event.event_type}")  # pragma: no cover
    title, body = template
    return title, body.format(e=event, d=event.data)


# -- records: the REMS Patient Monitoring Form (SPR-PMF-1) -------------------------------------


def pmf_audience(ctx: RoutingContext) -> tuple[str, ...]:
    """The session's prescriber (else the plan's), then the site's coordinators."""
    teams = [t for t in (ctx.session, ctx.patient) if t is not None]
    prescriber = next((t.prescriber_id for t in teams if t.prescriber_id), None)
    return _unique((prescriber, *ctx.site_coordinators))


def pmf_text(event: PmfReminder | PmfOverdue) -> tuple[str, str]:
    d = event.data
    missing = ", ".join(d.missing_fields) or "none"
    if isinstance(event, PmfReminder):
        return (
            "REMS monitoring form due",
            f"Patient {event.patient_id}, session {d.session_id}: the Patient Monitoring Form "
            f"{d.pmf_id} is due in {event.data.days_left} days (SPR-PMF-1). Missing: {missing}.",
        )
    return (
        "REMS monitoring form OVERDUE",
        f"Patient {event.patient_id}, session {d.session_id}: the Patient Monitoring Form "
        f"{d.pmf_id} is past its 7-day deadline (SPR-PMF-1). Missing: {missing}. Submit it now.",
    )


def escalation_text(title: str, body: str, level: int, after_seconds: int) -> tuple[str, str]:
    """The text escalated recipients get: the original, marked with its level."""
    return (
        f"ESCALATED (level {level}): {title}",
        f"{body} Not acknowledged {after_seconds} s after the first notification.",
    )
