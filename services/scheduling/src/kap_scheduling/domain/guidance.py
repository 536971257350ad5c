"""`next_action`: what a coordinator should do next for a plan, in their words.

The most urgent thing first: a plan that cannot proceed at all, a safety hold,
missing consent, an integration that is owed, then the next booking the
protocol needs (preparation, REMS prerequisites, dosing).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from itertools import pairwise

from kap_shared.events.enums import Phase

from . import rules as r
from .booking import (
    completed,
    describe_hold,
    next_sequence,
    rems_certification,
    rems_enrollment,
    treatment_consent,
)
from .model import (
    UNMET_DEADLINES,
    Consents,
    Deadline,
    DeadlineStatus,
    Hold,
    PlanInfo,
    PlanStatus,
    SiteInfo,
    Slot,
    Violation,
    format_minutes,
    minutes,
)
from .protocols import ESKETAMINE_TRD, KAP_SUBLINGUAL
from .rules import SchedulingRules


@dataclass(frozen=True)
class PlanState:
    plan: PlanInfo
    site: SiteInfo
    sessions: Sequence[Slot]  # the plan's sessions
    patient_sessions: Sequence[Slot]  # every session of the patient
    consents: Consents
    holds: Sequence[Hold]  # open holds
    deadlines: Sequence[Deadline]


def next_action(state: PlanState, rules: SchedulingRules, today: date) -> str:
    plan = state.plan
    if plan.status is PlanStatus.AWAITING_CARE_TEAM:
        return f"Add a prescriber and a therapist at {plan.site_id} so the plan can start."
    if plan.status is PlanStatus.SUSPENDED:
        when = f" on {state.site.day(plan.suspended_at)}" if plan.suspended_at else ""
        owed = _integration_owed(state)
        return (
            f"Plan suspended after an ineligible screening{when}; a prescriber must re-screen "
            "the patient before sessions can be booked." + (f" {owed}" if owed else "")
        )
    if state.holds:
        return (
            describe_hold(state.holds, state.site)
            + ". Preparation and integration sessions can still be booked."
        )
    consent = treatment_consent(state.consents)
    if consent:
        return _sentence(consent.message)
    step = _integration_owed(state) or _booking_step(state, rules, today)
    review = induction_review(state)
    return f"{review} Then: {step[:1].lower()}{step[1:]}" if review else step


def induction_review(state: PlanState) -> str | None:
    """SPR-SCH-1: the prescriber's task, until a dosing session is completed after it
    came due (the prescriber decided to continue)."""
    plan = state.plan
    due = plan.induction_review_due_at
    if due is None:
        return None
    if any(
        s.phase is Phase.DOSING and s.completed_at is not None and s.completed_at > due
        for s in state.sessions
    ):
        return None
    return (
        f"{plan.prescriber_id}: evaluate the benefit of the esketamine induction "
        f"({plan.induction_review_sessions} dosing sessions completed, {r.INDUCTION_REVIEW}) "
        "before treatment continues."
    )


def _sentence(message: str) -> str:
    return message[:1].upper() + message[1:] + ("" if message.endswith(".") else ".")


def _integration_owed(state: PlanState) -> str | None:
    unmet = sorted(
        (d for d in state.deadlines if d.status in UNMET_DEADLINES), key=lambda d: d.due_by
    )
    if not unmet:
        return None
    deadline = unmet[0]
    site = state.site
    dosing = next(
        (s for s in state.patient_sessions if s.session_id == deadline.dosing_session_id), None
    )
    after = f"dosing session {dosing.sequence}" if dosing else "the last dosing session"
    booked = sorted(
        (
            s
            for s in state.patient_sessions
            if s.phase is Phase.INTEGRATION
            and s.pending
            and (dosing is None or s.starts_at >= dosing.ends_at)
        ),
        key=lambda s: s.starts_at,
    )
    due = site.describe(deadline.due_by)
    therapist = deadline.therapist_id
    if deadline.status is DeadlineStatus.OVERDUE:
        if booked:
            return (
                f"Integration after {after} is overdue (was due by {due}); complete the "
                f"integration session booked for {site.describe(booked[0].starts_at)} "
                f"with {booked[0].therapist_id}."
            )
        return (
            f"Integration after {after} is overdue (was due by {due}); "
            f"book it with {therapist} now."
        )
    if booked:
        return (
            f"Complete the integration session after {after} with {booked[0].therapist_id}, "
            f"booked for {site.describe(booked[0].starts_at)} (due by {due})."
        )
    return f"Book the integration session after {after} with {therapist} by {due}."


def _booking_step(state: PlanState, rules: SchedulingRules, today: date) -> str:
    plan, site, sessions = state.plan, state.site, state.sessions
    therapist, prescriber = plan.therapist_id, plan.prescriber_id
    needed = rules.min_preparation_sessions(plan.route)
    prep_done = completed(sessions, Phase.PREPARATION)
    if plan.phase is Phase.PREPARATION and prep_done < needed:
        pending = sorted(
            (s for s in sessions if s.phase is Phase.PREPARATION and s.pending),
            key=lambda s: s.starts_at,
        )
        if prep_done + len(pending) < needed:
            n = next_sequence(sessions, Phase.PREPARATION)
            return f"Book preparation session {n} of {needed} with {therapist}."
        first = pending[0]
        return (
            f"Complete preparation session {first.sequence} of {needed} "
            f"({site.describe(first.starts_at)} with {first.therapist_id}) before dosing "
            "can be booked."
        )

    planned = plan.planned_dosing_sessions
    dosing = [s for s in sessions if s.phase is Phase.DOSING and s.live]
    done = completed(sessions, Phase.DOSING)
    if done >= planned:
        return (
            f"Dosing course complete ({done} of {planned} dosing sessions); continue "
            f"integration with {therapist} as needed."
        )
    upcoming = min((s for s in dosing if s.pending), key=lambda s: s.starts_at, default=None)
    if len(dosing) < planned:
        if plan.esketamine:
            blocked = rems_enrollment(state.consents) or rems_certification(site, today)
            if blocked:
                return _sentence(blocked.message)
        if plan.protocol == KAP_SUBLINGUAL.name and rules.kap_alternate_dosing_and_integration:
            last = max(dosing, key=lambda s: s.starts_at, default=None)
            if last is not None and not any(
                s.phase is Phase.INTEGRATION and s.live and s.starts_at >= last.ends_at
                for s in sessions
            ):
                return (
                    f"Book the integration session after dosing session {last.sequence} with "
                    f"{therapist}; KAP dosing and integration sessions alternate."
                )
        n = next_sequence(sessions, Phase.DOSING)
        action = f"Book dosing session {n} of {planned} with {prescriber} and {therapist}"
        if upcoming is not None:
            action += (
                f" (next: dosing session {upcoming.sequence} on "
                f"{site.describe(upcoming.starts_at)})"
            )
        return action + "."
    if upcoming is None:  # every planned session is live and none pending: all completed
        return f"Continue integration with {therapist} as needed."
    return (
        f"Next: dosing session {upcoming.sequence} of {planned} on "
        f"{site.describe(upcoming.starts_at)} with {upcoming.prescriber_id} and "
        f"{upcoming.therapist_id}."
    )


def warnings(
    state: PlanState, rules: SchedulingRules, now: datetime | None = None
) -> list[Violation]:
    """Soft rules: worth a coordinator's look, never a refusal."""
    found = _spacing_warnings(state, rules)
    if now is not None:
        found += _integration_warnings(state, rules, now)
    return found


def _integration_warnings(
    state: PlanState, rules: SchedulingRules, now: datetime
) -> list[Violation]:
    """KAP-2: an integration session still unbooked close to its deadline."""
    found: list[Violation] = []
    warn_before = timedelta(hours=rules.integration_warn_hours_before_due)
    for deadline in state.deadlines:
        if deadline.status is not DeadlineStatus.OPEN or now < deadline.due_by - warn_before:
            continue
        dosing = next(
            (s for s in state.patient_sessions if s.session_id == deadline.dosing_session_id),
            None,
        )
        if dosing is not None and any(
            s.phase is Phase.INTEGRATION and s.live and s.starts_at >= dosing.ends_at
            for s in state.patient_sessions
        ):
            continue
        after = f"dosing session {dosing.sequence}" if dosing else "the last dosing session"
        found.append(
            Violation(
                r.SAME_THERAPIST,
                f"no integration session is booked after {after}; it is due with "
                f"{deadline.therapist_id} by {state.site.describe(deadline.due_by)}",
            )
        )
    return found


def _spacing_warnings(state: PlanState, rules: SchedulingRules) -> list[Violation]:
    dosing = sorted(
        (s for s in state.sessions if s.phase is Phase.DOSING and s.live),
        key=lambda s: s.starts_at,
    )
    found: list[Violation] = []
    for before, after in pairwise(dosing):
        gap = minutes(after.starts_at - before.starts_at)
        pair = f"dosing sessions {before.sequence} and {after.sequence}"
        if state.plan.protocol == ESKETAMINE_TRD.name:
            if gap < rules.esketamine_min_gap_hours * 60:
                found.append(
                    Violation(
                        r.ESKETAMINE_SPACING,
                        f"{pair} are {format_minutes(gap)} apart; esketamine doses are "
                        f"usually at least {format_minutes(rules.esketamine_min_gap_hours * 60)} "
                        "apart",
                    )
                )
        elif gap > rules.ketamine_max_gap_days * 24 * 60:
            found.append(
                Violation(
                    r.KETAMINE_GAP,
                    f"{pair} are {gap / (24 * 60):.1f} days apart; more than "
                    f"{rules.ketamine_max_gap_days:g} days between dosing sessions weakens "
                    "the acute course",
                )
            )
    return found
