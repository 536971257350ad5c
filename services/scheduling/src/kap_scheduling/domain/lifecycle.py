"""A session's life after booking: check-in gates, completion, the plan's phase
and the integration deadline each dosing session starts. Pure.

Status: scheduled -> checked_in -> completed, and scheduled | checked_in ->
cancelled. Only a scheduled session can be rescheduled.

Phases (PhaseAdvanced):
- none -> preparation when the plan gets its care team;
- preparation -> dosing when the patient is checked in for the first dosing
  session: from then on the patient is in dosing, even if that session is
  later cancelled (booking a dosing session does not change the phase: it may
  be cancelled before it happens);
- dosing -> integration when the last planned dosing session is completed: the
  course's dosing is over and what remains is integration. Integration
  sessions can still be booked afterwards; more dosing cannot (SCH-COURSE-1).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from kap_shared.events.enums import Phase, Route

from . import model
from . import rules as r
from .booking import dosing_hold, rems_certification, rems_enrollment, treatment_consent
from .model import format_minutes, minutes
from .rules import SchedulingRules

STATUS_WORD = {
    model.SessionStatus.SCHEDULED: "scheduled",
    model.SessionStatus.CHECKED_IN: "checked in",
    model.SessionStatus.COMPLETED: "completed",
    model.SessionStatus.CANCELLED: "cancelled",
}


def state_violation(
    session: model.Slot, action: str, allowed: Sequence[model.SessionStatus]
) -> model.Violation | None:
    if session.status in allowed:
        return None
    return model.Violation(
        r.STATE, f"the session is {STATUS_WORD[session.status]}; it cannot be {action}"
    )


def check_in_window(
    session: model.Slot, now: datetime, rules: SchedulingRules, site: model.SiteInfo
) -> model.Violation | None:
    opens = session.starts_at - timedelta(minutes=rules.check_in_opens_minutes_before)
    closes = session.starts_at + timedelta(minutes=rules.check_in_closes_minutes_after)
    if opens <= now <= closes:
        return None
    when = "opens" if now < opens else "closed"
    moment = opens if now < opens else closes
    return model.Violation(
        r.CHECK_IN_WINDOW,
        f"check-in {when} at {site.describe(moment)} "
        f"({format_minutes(rules.check_in_opens_minutes_before)} before to "
        f"{format_minutes(rules.check_in_closes_minutes_after)} after the session starts)",
    )


def check_check_in(
    session: model.Slot,
    *,
    plan: model.PlanInfo,
    site: model.SiteInfo,
    consents: model.Consents,
    holds: Sequence[model.Hold],
    attestation: model.Attestation,
    now: datetime,
    rules: SchedulingRules,
) -> model.Violation | None:
    """The first gate that keeps the patient from being checked in, or None.

    Dosing sessions re-check the booking gates that can change after booking (plan
    suspended, consent withdrawn, safety hold, REMS), then fasting and transport.
    The attestation's fields are required for dosing (the handler answers 422).
    """
    violation = state_violation(session, "checked in", (model.SessionStatus.SCHEDULED,))
    violation = violation or check_in_window(session, now, rules, site)
    violation = violation or treatment_consent(consents)
    if violation or session.phase is not Phase.DOSING:
        return violation
    if plan.status is not model.PlanStatus.ACTIVE:
        return model.Violation(
            r.PLAN, "the treatment plan is not active (suspended); dosing cannot start"
        )
    violation = dosing_hold(holds, site)
    if violation:
        return violation
    if plan.esketamine:
        violation = rems_enrollment(consents) or rems_certification(
            site, site.local(session.starts_at).date()
        )
        return violation or pre_dose(attestation, now, rules, esketamine=True)
    return pre_dose(attestation, now, rules, esketamine=False)


@dataclass(frozen=True)
class DrugPreparation:
    """What one drug asks of the patient before a dose: a fast from food and one from
    liquids (rule id, what the message calls it, the rules' minutes), and a way home."""

    drug: str
    food: tuple[str, str, Callable[[SchedulingRules], int]]
    liquids: tuple[str, str, Callable[[SchedulingRules], int]]
    way_home: model.Violation


ESKETAMINE_PREPARATION = DrugPreparation(
    "esketamine",
    food=(r.ESKETAMINE_FOOD, "food", lambda rules: rules.esketamine_food_fast_minutes),
    liquids=(r.ESKETAMINE_LIQUIDS, "liquids", lambda rules: rules.esketamine_liquid_fast_minutes),
    way_home=model.Violation(
        r.ESKETAMINE_TRANSPORT,
        "the patient must not drive until the next day; arrange transport home before check-in",
    ),
)
KETAMINE_PREPARATION = DrugPreparation(
    "ketamine",
    food=(r.KETAMINE_FASTING, "solid food", lambda rules: rules.ketamine_solids_fast_minutes),
    liquids=(
        r.KETAMINE_FASTING,
        "clear liquids",
        lambda rules: rules.ketamine_clear_liquids_fast_minutes,
    ),
    way_home=model.Violation(
        r.KETAMINE_ESCORT,
        "a responsible adult must take the patient home; arrange an escort before check-in",
    ),
)


def pre_dose(
    attestation: model.Attestation, now: datetime, rules: SchedulingRules, *, esketamine: bool
) -> model.Violation | None:
    """Fasting, then the way home, before a dose: the drug decides the rules and limits.
    Never eaten or drunk counts as fasted."""
    a = attestation
    drug = ESKETAMINE_PREPARATION if esketamine else KETAMINE_PREPARATION
    fasts = ((*drug.food, a.last_food_at, "ate"), (*drug.liquids, a.last_liquid_at, "drank"))
    for rule_id, intake, fast_minutes_of, last_at, verb in fasts:
        fast_minutes = fast_minutes_of(rules)
        since = minutes(now - last_at) if last_at is not None else float("inf")
        if since < fast_minutes:
            return model.Violation(
                rule_id,
                f"no {intake} for at least {format_minutes(fast_minutes)} before {drug.drug}; "
                f"the patient last {verb} {format_minutes(since)} ago",
            )
    return None if a.transport_arranged else drug.way_home


def check_complete(session: model.Slot) -> model.Violation | None:
    if session.status is not model.SessionStatus.CHECKED_IN:
        action = (
            "completed before the patient is checked in"
            if session.status is model.SessionStatus.SCHEDULED
            else "completed"
        )
        return state_violation(session, action, (model.SessionStatus.CHECKED_IN,))
    if session.phase is Phase.DOSING and session.discharge_cleared_at is None:
        return model.Violation(
            r.DISCHARGE,
            "monitoring has not cleared the patient for discharge yet; the dosing session "
            "can be completed once discharge is cleared",
        )
    return None


def phase_after_check_in(plan: model.PlanInfo, session: model.Slot) -> Phase | None:
    if session.phase is Phase.DOSING and plan.phase is Phase.PREPARATION:
        return Phase.DOSING
    return None


def phase_after_completion(
    plan: model.PlanInfo, session: model.Slot, completed_dosing: int
) -> Phase | None:
    """`completed_dosing` counts the plan's completed dosing sessions, this one included."""
    if (
        session.phase is Phase.DOSING
        and plan.phase is Phase.DOSING
        and completed_dosing >= plan.planned_dosing_sessions
    ):
        return Phase.INTEGRATION
    return None


def integration_due_by(route: Route, completed_at: datetime, rules: SchedulingRules) -> datetime:
    """KAP-2: integration with the same therapist within 72 h (7 days for oral)."""
    return completed_at + timedelta(hours=rules.integration_due_after_hours(route))


def deadline_met_by(
    deadlines: Sequence[model.Deadline], therapist_id: str
) -> model.Deadline | None:
    """The deadline a completed integration session satisfies: the oldest one still
    unmet (open, or already reported overdue) with the same therapist."""
    unmet = [
        d for d in deadlines if d.status in model.UNMET_DEADLINES and d.therapist_id == therapist_id
    ]
    return min(unmet, key=lambda d: d.due_by, default=None)
