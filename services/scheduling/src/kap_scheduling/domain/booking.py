"""Booking and rescheduling: every rule a proposed session must pass (see
`rules` for the table of ids). Pure: the handler gathers the facts, this
module decides, in a fixed order so the most fundamental reason is reported.
"""

from __future__ import annotations

import functools
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from kap_shared.events.enums import ConsentScope, Phase, Route

from . import rules as r
from .model import (
    UNMET_DEADLINES,
    WEEKDAY_NAMES,
    WEEKDAYS,
    Consents,
    Deadline,
    Hold,
    PlanInfo,
    PlanStatus,
    SessionStatus,
    SiteInfo,
    Slot,
    StaffMember,
    Violation,
    format_minutes,
    format_value,
    minutes,
)
from .protocols import ESKETAMINE_TRD, KAP_SUBLINGUAL, KETAMINE_IV_INDUCTION
from .rules import SchedulingRules

DOSING_KIND = {
    Route.INTRANASAL_ESKETAMINE: "an esketamine",
    Route.IV: "an IV ketamine",
    Route.IM: "an IM ketamine",
    Route.SUBLINGUAL: "a sublingual ketamine",
    Route.ORAL: "an oral ketamine",
}
PHASE_WORD = {
    Phase.PREPARATION: "preparation",
    Phase.DOSING: "dosing",
    Phase.INTEGRATION: "integration",
}


@dataclass(frozen=True)
class Proposal:
    """A session someone wants to book (or an existing one at new times)."""

    phase: Phase
    starts_at: datetime
    ends_at: datetime
    room_id: str
    room_site_id: str
    therapist: StaffMember
    prescriber: StaffMember | None
    # The session being rescheduled: it does not conflict with itself.
    replaces: str | None = None
    # False: the therapist is named but not at the chair (esketamine dosing, KAP-3).
    therapist_present: bool = True


@dataclass(frozen=True)
class BookingContext:
    plan: PlanInfo
    site: SiteInfo
    consents: Consents
    holds: Sequence[Hold]  # open holds of the patient
    patient_sessions: Sequence[Slot]  # every session of the patient (all plans)
    overlapping: Sequence[Slot]  # live sessions of anyone overlapping the proposal
    deadlines: Sequence[Deadline]  # integration deadlines of the patient

    def plan_sessions(self, replaces: str | None) -> list[Slot]:
        return [
            s
            for s in self.patient_sessions
            if s.plan_id == self.plan.plan_id and s.session_id != replaces
        ]


Check = Callable[[Proposal, BookingContext, SchedulingRules], Violation | None]


def only_for(phase: Phase, *, esketamine: bool = False) -> Callable[[Check], Check]:
    """A check of sessions of `phase` only (with `esketamine`, of an esketamine plan's
    only): every other proposal passes it."""

    def decorate(check: Check) -> Check:
        @functools.wraps(check)
        def applies(p: Proposal, ctx: BookingContext, rules: SchedulingRules) -> Violation | None:
            if p.phase is not phase or (esketamine and not ctx.plan.esketamine):
                return None
            return check(p, ctx, rules)

        return applies

    return decorate


def check_booking(
    proposal: Proposal, ctx: BookingContext, rules: SchedulingRules
) -> Violation | None:
    """The first rule the proposal breaks, or None when it may be booked."""
    for check in CHECKS:
        violation = check(proposal, ctx, rules)
        if violation is not None:
            return violation
    return None


# -- the plan, consent and site ---------------------------------------------------------


def check_plan(p: Proposal, ctx: BookingContext, _: SchedulingRules) -> Violation | None:
    plan = ctx.plan
    if plan.status is PlanStatus.AWAITING_CARE_TEAM:
        return Violation(
            r.PLAN,
            "the treatment plan has no care team yet; add a prescriber and a therapist "
            f"at {plan.site_id} before booking sessions",
        )
    if plan.status is PlanStatus.SUSPENDED:
        owed = any(d.status in UNMET_DEADLINES for d in ctx.deadlines)
        if p.phase is Phase.INTEGRATION and owed:
            return None  # integration after a completed dosing session is still owed
        when = f" on {ctx.site.day(plan.suspended_at)}" if plan.suspended_at else ""
        return Violation(
            r.PLAN,
            f"the treatment plan was suspended after an ineligible screening{when}; "
            "a prescriber must re-screen the patient before sessions can be booked",
        )
    return None


def check_consent(_: Proposal, ctx: BookingContext, __: SchedulingRules) -> Violation | None:
    return treatment_consent(ctx.consents)


def treatment_consent(consents: Consents) -> Violation | None:
    granted = consents.get(ConsentScope.TREATMENT)
    if granted is None:
        return Violation(
            r.CONSENT,
            "the patient has no treatment consent on file; record it at intake first",
        )
    if not granted:
        return Violation(
            r.CONSENT,
            "the patient has withdrawn treatment consent; no session can be booked or "
            "started until consent is recorded again at intake",
        )
    return None


def check_site(p: Proposal, ctx: BookingContext, _: SchedulingRules) -> Violation | None:
    site_id = ctx.plan.site_id
    if p.room_site_id != site_id:
        return Violation(
            r.SITE,
            f"room {p.room_id} is at {p.room_site_id}, but the patient is treated at {site_id}",
        )
    for member in (p.therapist, p.prescriber):
        if member is not None and site_id not in member.sites:
            return Violation(
                r.SITE,
                f"{member.clinician_id} does not work at {site_id} "
                f"(works at {', '.join(member.sites)})",
            )
    return None


@only_for(Phase.DOSING)
def check_dosing_team(p: Proposal, ctx: BookingContext, __: SchedulingRules) -> Violation | None:
    if p.prescriber is not None:
        return None
    if ctx.plan.esketamine:
        return Violation(
            r.PRESCRIBER_ONSITE,
            "esketamine needs a prescriber onsite during administration and monitoring "
            "(one prescriber may supervise several chairs); add prescriber_id",
        )
    return Violation(
        r.DOSING_TEAM,
        "a dosing session needs a prescriber as well as a therapist and a room; add prescriber_id",
    )


@only_for(Phase.INTEGRATION)
def check_same_therapist(p: Proposal, ctx: BookingContext, _: SchedulingRules) -> Violation | None:
    plan_therapist = ctx.plan.therapist_id
    if p.therapist.clinician_id != plan_therapist:
        return Violation(
            r.SAME_THERAPIST,
            f"integration must be with the patient's own therapist {plan_therapist}, "
            f"who is with the patient at dosing, not {p.therapist.clinician_id}",
        )
    return None


# -- esketamine REMS ---------------------------------------------------------------------


@only_for(Phase.DOSING, esketamine=True)
def check_rems_enrollment(
    _: Proposal, ctx: BookingContext, __: SchedulingRules
) -> Violation | None:
    return rems_enrollment(ctx.consents)


def rems_enrollment(consents: Consents) -> Violation | None:
    granted = consents.get(ConsentScope.REMS_ENROLLMENT)
    if granted:
        return None
    state = "was withdrawn" if granted is False else "is not on file"
    return Violation(
        r.REMS_ENROLLMENT,
        f"esketamine can only be given to a patient enrolled in the Spravato REMS; the "
        f"enrollment {state}. Record consent scope rems_enrollment at intake",
    )


@only_for(Phase.DOSING, esketamine=True)
def check_rems_certification(
    p: Proposal, ctx: BookingContext, _: SchedulingRules
) -> Violation | None:
    return rems_certification(ctx.site, ctx.site.local(p.starts_at).date())


def rems_certification(site: SiteInfo, day: date) -> Violation | None:
    until = site.rems_certified_until
    if until is None:
        return Violation(
            r.REMS_CERTIFICATION,
            f"the site {site.site_id} is not a REMS-certified setting; esketamine cannot be "
            "given there",
        )
    if day > until:
        return Violation(
            r.REMS_CERTIFICATION,
            f"the REMS certification of {site.site_id} is valid until {until.isoformat()}; "
            f"esketamine cannot be given there on {day.isoformat()}",
        )
    return None


# -- holds, preparation, course ----------------------------------------------------------


@only_for(Phase.DOSING)
def check_hold(_: Proposal, ctx: BookingContext, __: SchedulingRules) -> Violation | None:
    return dosing_hold(ctx.holds, ctx.site)


def dosing_hold(holds: Sequence[Hold], site: SiteInfo) -> Violation | None:
    if not holds:
        return None
    return Violation(r.HOLD, describe_hold(holds, site))


def describe_hold(holds: Sequence[Hold], site: SiteInfo) -> str:
    first = min(holds, key=lambda h: h.raised_at)
    more = f" ({len(holds)} open holds)" if len(holds) > 1 else ""
    return (
        f"Dosing on hold: {first.source} answered {format_value(first.value)} on "
        f"{site.day(first.raised_at)}; a prescriber must clear the hold{more}"
    )


@only_for(Phase.DOSING)
def check_preparation(p: Proposal, ctx: BookingContext, rules: SchedulingRules) -> Violation | None:
    done = completed(ctx.plan_sessions(p.replaces), Phase.PREPARATION)
    needed = rules.min_preparation_sessions(ctx.plan.route)
    if done < needed:
        return Violation(
            r.PREPARATION,
            f"{done} of {needed} preparation sessions completed; complete "
            f"{needed - done} more before booking dosing",
        )
    return None


@only_for(Phase.DOSING)
def check_course(p: Proposal, ctx: BookingContext, _: SchedulingRules) -> Violation | None:
    booked = sum(1 for s in ctx.plan_sessions(p.replaces) if s.live and s.phase is Phase.DOSING)
    planned = ctx.plan.planned_dosing_sessions
    if booked >= planned:
        return Violation(
            r.COURSE,
            f"all {planned} dosing sessions of the {ctx.plan.protocol} course are already "
            "booked or done",
        )
    return None


@only_for(Phase.INTEGRATION)
def check_integration_follows_dosing(
    p: Proposal, ctx: BookingContext, _: SchedulingRules
) -> Violation | None:
    if any(
        s.live and s.phase is Phase.DOSING and s.ends_at <= p.starts_at
        for s in ctx.patient_sessions
    ):
        return None
    return Violation(
        r.INTEGRATION_AFTER_DOSING,
        "an integration session follows a dosing session; book it to start after a "
        "dosing session has ended",
    )


# -- chair time and frequency -------------------------------------------------------------


@only_for(Phase.DOSING)
def check_chair_time(p: Proposal, ctx: BookingContext, rules: SchedulingRules) -> Violation | None:
    rule_id, needed = rules.min_chair_minutes(ctx.plan.route)
    booked = minutes(p.ends_at - p.starts_at)
    if booked < needed:
        return Violation(
            rule_id,
            f"{DOSING_KIND[ctx.plan.route]} dosing session must reserve at least "
            f"{format_minutes(needed)} of chair "
            f"time; this one has {format_minutes(booked)}",
        )
    return None


def treatment_week(first_day: date, day: date) -> int:
    """SPR-SCH-2: treatment week of `day` (1-based), counted in 7-day blocks from the
    local day of the first dosing session, not in calendar weeks."""
    return (day - first_day).days // 7 + 1


def weekly_limit(route: Route, protocol: str, week: int, rules: SchedulingRules) -> int | None:
    """How many dosing sessions treatment week `week` (1-based) may hold, if limited."""
    if protocol == ESKETAMINE_TRD.name:
        if week <= rules.esketamine_induction_weeks:
            return rules.esketamine_induction_max_per_week
        return rules.esketamine_later_max_per_week
    if protocol == KETAMINE_IV_INDUCTION.name and route in (Route.IV, Route.IM):
        return rules.ketamine_max_dosing_per_week
    return None


@only_for(Phase.DOSING)
def check_frequency(p: Proposal, ctx: BookingContext, rules: SchedulingRules) -> Violation | None:
    plan = ctx.plan
    starts = [
        s.starts_at for s in ctx.plan_sessions(p.replaces) if s.live and s.phase is Phase.DOSING
    ]
    local_days = [ctx.site.local(t).date() for t in [*starts, p.starts_at]]
    first_day = min(local_days)
    weeks = Counter(treatment_week(first_day, d) for d in local_days)
    mine = treatment_week(first_day, ctx.site.local(p.starts_at).date())
    # The proposal's week first (the usual case), then every other week: moving the first
    # dosing session earlier renumbers the weeks after it.
    for number in sorted(weeks, key=lambda w: (w != mine, w)):
        limit = weekly_limit(plan.route, plan.protocol, number, rules)
        if limit is not None and weeks[number] > limit:
            return _frequency_violation(plan, number, first_day, weeks[number], limit, rules)
    return None


def _frequency_violation(
    plan: PlanInfo, week: int, first_day: date, count: int, limit: int, rules: SchedulingRules
) -> Violation:
    start = first_day + timedelta(days=7 * (week - 1))
    label = (
        f"treatment week {week} ({start} to {start + timedelta(days=6)}, counted from the "
        f"first dosing session on {first_day})"
    )
    if plan.protocol == ESKETAMINE_TRD.name:
        weeks = rules.esketamine_induction_weeks
        return Violation(
            r.ESKETAMINE_FREQUENCY,
            f"esketamine allows at most {rules.esketamine_induction_max_per_week} dosing "
            f"sessions a week in weeks 1-{weeks} and {rules.esketamine_later_max_per_week} "
            f"a week from week {weeks + 1}; {label} would have {count}",
        )
    return Violation(
        r.KETAMINE_FREQUENCY,
        f"the ketamine induction series allows at most {limit} dosing sessions a week; "
        f"{label} would have {count}",
    )


@only_for(Phase.DOSING)
def check_alternation(p: Proposal, ctx: BookingContext, rules: SchedulingRules) -> Violation | None:
    if ctx.plan.protocol != KAP_SUBLINGUAL.name or not rules.kap_alternate_dosing_and_integration:
        return None
    sessions = [s for s in ctx.plan_sessions(p.replaces) if s.live]
    before = [s for s in sessions if s.phase is Phase.DOSING and s.starts_at < p.starts_at]
    if not before:
        return None
    previous = max(before, key=lambda s: s.starts_at)
    if any(
        s.phase is Phase.INTEGRATION and previous.ends_at <= s.starts_at < p.starts_at
        for s in sessions
    ):
        return None
    return Violation(
        r.ALTERNATION,
        f"KAP dosing and integration sessions alternate: book the integration session "
        f"after dosing session {previous.sequence} before the next dosing session",
    )


# -- hours and conflicts ------------------------------------------------------------------


def check_hours(p: Proposal, ctx: BookingContext, _: SchedulingRules) -> Violation | None:
    for member in (p.therapist if p.therapist_present else None, p.prescriber):
        if member is not None:
            reason = outside_hours(member, ctx.site, p.starts_at, p.ends_at)
            if reason:
                return Violation(r.HOURS, reason)
    return None


def outside_hours(
    member: StaffMember, site: SiteInfo, starts_at: datetime, ends_at: datetime
) -> str | None:
    """Why the session falls outside the clinician's hours, or None when it fits."""
    if not member.hours:
        return None  # hours not configured: not restricted
    start, end = site.local(starts_at), site.local(ends_at)
    weekday = start.weekday()
    day = WEEKDAY_NAMES[weekday]
    window = member.hours.get(WEEKDAYS[weekday])
    if window is None:
        return f"{member.clinician_id} does not work on {day}s"
    opens, closes = window
    hours = f"{opens:%H:%M}-{closes:%H:%M} on {day}s ({site.timezone})"
    if end.date() != start.date() or start.time() < opens or end.time() > closes:
        return (
            f"{member.clinician_id} works {hours}; the session runs "
            f"{start:%H:%M}-{end:%H:%M}"
            + (f" until {end:%a %H:%M}" if end.date() != start.date() else "")
        )
    return None


def check_conflicts(p: Proposal, ctx: BookingContext, rules: SchedulingRules) -> Violation | None:
    candidates = [s for s in ctx.overlapping if s.live and s.session_id != p.replaces]
    others = [s for s in candidates if s.overlaps(p.starts_at, p.ends_at)]
    for s in others:
        if s.patient_id == ctx.plan.patient_id:
            return Violation(
                r.CONFLICT_PATIENT,
                f"the patient already has {describe_slot(s, ctx.site)}",
            )
    violation = clinician_conflict(p, ctx, others, rules)
    if violation:
        return violation
    for s in others:
        if s.room_id == p.room_id:
            return Violation(
                r.CONFLICT_ROOM,
                f"room {p.room_id} is already booked "
                f"{ctx.site.describe(s.starts_at)}-{ctx.site.local(s.ends_at):%H:%M}",
            )
    return chair_block_conflict(p, ctx, candidates, rules)


def shared_supervision(p: Proposal, ctx: BookingContext, s: Slot) -> bool:
    """SPR-CERT-2 asks for a prescriber onsite, not one per chair: the same prescriber
    may supervise overlapping esketamine dosing sessions at the same site."""
    return (
        p.phase is Phase.DOSING
        and ctx.plan.esketamine
        and p.prescriber is not None
        and s.esketamine_dosing
        and s.prescriber_id == p.prescriber.clinician_id
        and s.site_id == ctx.plan.site_id
    )


def clinician_conflict(
    p: Proposal, ctx: BookingContext, others: Sequence[Slot], rules: SchedulingRules
) -> Violation | None:
    wanted = {p.therapist.clinician_id} if p.therapist_present else set()
    wanted |= {p.prescriber.clinician_id} if p.prescriber else set()
    supervised = [s for s in others if shared_supervision(p, ctx, s)]
    cap = rules.esketamine_chairs_per_prescriber
    if p.prescriber is not None and cap is not None and len(supervised) + 1 > cap:
        return Violation(
            r.CONFLICT_CLINICIAN,
            f"{p.prescriber.clinician_id} already supervises {len(supervised)} esketamine "
            f"chair(s) at that time; at most {cap} at once at {ctx.plan.site_id}",
        )
    for s in others:
        clash = wanted & s.clinicians
        if s in supervised and p.prescriber is not None:
            clash.discard(p.prescriber.clinician_id)
        if clash:
            return Violation(
                r.CONFLICT_CLINICIAN,
                f"{sorted(clash)[0]} is already booked for another session "
                f"{ctx.site.describe(s.starts_at)}-{ctx.site.local(s.ends_at):%H:%M}",
            )
    return None


def chair_block_conflict(
    p: Proposal, ctx: BookingContext, candidates: Sequence[Slot], rules: SchedulingRules
) -> Violation | None:
    """SPR-SCH-4: an esketamine dosing session holds its room for check-in and settling
    before it starts, so two 2-hour sessions cannot follow each other back to back."""
    mine = rules.chair_check_in_minutes(ctx.plan.route, p.phase)
    for s in candidates:
        if s.room_id != p.room_id:
            continue
        theirs = rules.chair_check_in_minutes(s.route, s.phase) if s.route else 0
        block_starts = s.starts_at - timedelta(minutes=theirs)
        if block_starts < p.ends_at and p.starts_at - timedelta(minutes=mine) < s.ends_at:
            if p.starts_at >= s.ends_at:  # after the other session: our own check-in
                fix = f"start at {ctx.site.describe(s.ends_at + timedelta(minutes=mine))} or later"
            else:  # before it: its check-in
                fix = f"end by {ctx.site.describe(block_starts)}"
            return Violation(
                r.ESKETAMINE_CHAIR,
                f"room {p.room_id} is booked {ctx.site.describe(s.starts_at)}-"
                f"{ctx.site.local(s.ends_at):%H:%M}; an esketamine dosing session holds its "
                f"chair {format_minutes(max(mine, theirs))} before it starts for check-in and "
                f"settling: {fix}, or use another room",
            )
    return None


def describe_slot(s: Slot, site: SiteInfo) -> str:
    return (
        f"{PHASE_WORD[s.phase]} session {s.sequence} at "
        f"{site.describe(s.starts_at)}-{site.local(s.ends_at):%H:%M}"
    )


CHECKS: tuple[Check, ...] = (
    check_plan,
    check_consent,
    check_site,
    check_dosing_team,
    check_same_therapist,
    check_rems_enrollment,
    check_rems_certification,
    check_hold,
    check_preparation,
    check_course,
    check_integration_follows_dosing,
    check_chair_time,
    check_frequency,
    check_alternation,
    check_hours,
    check_conflicts,
)


# -- helpers used by handlers and guidance --------------------------------------------------


def completed(sessions: Sequence[Slot], phase: Phase) -> int:
    return sum(1 for s in sessions if s.phase is phase and s.status is SessionStatus.COMPLETED)


def next_sequence(sessions: Sequence[Slot], phase: Phase) -> int:
    """The n of "n-th session of that phase": the lowest number no live session of the
    phase holds, so a cancelled session 2 is rebooked as session 2."""
    taken = {s.sequence for s in sessions if s.live and s.phase is phase}
    n = 1
    while n in taken:
        n += 1
    return n
