"""Sessions: booking, rescheduling, cancelling, check-in and completion. Each use
case runs in one unit of work: the state change, its events (outbox) and any
timer commit together, or nothing does (a 409 or 422 stores and publishes nothing).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from kap_shared.auth import Principal
from kap_shared.events import (
    SessionCheckedIn,
    SessionCompleted,
    SessionRescheduled,
    SessionScheduled,
    new_id,
)
from kap_shared.events.enums import Phase, Role, Route
from kap_shared.events.scheduling import (
    SessionCheckedInData,
    SessionCompletedData,
    SessionRescheduledData,
    SessionScheduledData,
)
from kap_shared.http.errors import InvalidField, NotFound, RuleViolation
from kap_shared.messaging import timers
from kap_shared.messaging.unit_of_work import UnitOfWork
from kap_shared.rules import SiteRules
from kap_shared.validation import in_the_future

from ..adapters import repository as repo
from ..adapters.tables import (
    Clinician,
    IntegrationDeadline,
    Patient,
    Plan,
    Room,
    TreatmentSession,
)
from ..domain import lifecycle
from ..domain import rules as r
from ..domain.booking import BookingContext, Proposal, check_booking, next_sequence
from ..domain.commands import BookSession, CancelSession, CheckIn, RescheduleSession
from ..domain.model import (
    Attestation,
    DeadlineStatus,
    SessionStatus,
    Violation,
    format_minutes,
    minutes,
)
from ..domain.protocols import protocol_for
from ..domain.rules import SchedulingRules
from .events import advance_phase, cancel, plan_fields
from .induction import after_dosing_completed, start_induction_clock

INTEGRATION_DUE = "integration-due"


def deadline_key(dosing_session_id: str) -> str:
    return f"{INTEGRATION_DUE}:{dosing_session_id}"


def enforce(violation: Violation | None) -> None:
    if violation is not None:
        raise RuleViolation(violation.rule_id, violation.message)


# -- lookups (404 / 422) ---------------------------------------------------------------------


async def known_patient(uow: UnitOfWork, patient_id: str) -> Patient:
    """The patient named in a request body: 422 when scheduling has never heard of them."""
    patient = await repo.patient(uow.session, patient_id)
    if patient is None:
        raise InvalidField(
            "patient_id", f"unknown patient {patient_id} (not screened at intake yet)"
        )
    return patient


async def patient_or_404(uow: UnitOfWork, patient_id: str) -> Patient:
    patient = await repo.patient(uow.session, patient_id)
    if patient is None:
        raise NotFound("patient", patient_id)
    return patient


async def get_session(
    uow: UnitOfWork, session_id: str, *, for_update: bool = True
) -> TreatmentSession:
    row = await repo.treatment_session(uow.session, session_id, for_update=for_update)
    if row is None:
        raise NotFound("session", session_id)
    return row


async def _staff(uow: UnitOfWork, clinician_id: str, role: Role, field: str) -> Clinician:
    clinician = await uow.session.get(Clinician, clinician_id)
    if clinician is None:
        raise InvalidField(field, f"unknown clinician {clinician_id}")
    if clinician.role != role.value:
        raise InvalidField(field, f"{clinician_id} is a {clinician.role}, not a {role.value}")
    return clinician


async def _plan_of(uow: UnitOfWork, row: TreatmentSession) -> Plan:
    plan = await uow.session.get(Plan, row.plan_id)
    if plan is None:  # a foreign key guarantees it
        raise NotFound("plan", row.plan_id)
    return plan


def _validate_times(
    starts_at: datetime, ends_at: datetime, now: datetime, rules: SchedulingRules
) -> None:
    if starts_at < now:
        raise InvalidField(
            "starts_at", f"{starts_at.isoformat()} is in the past; book a time from now on"
        )
    length = minutes(ends_at - starts_at)
    if length > rules.max_session_minutes:
        raise InvalidField(
            "ends_at",
            f"the session would last {format_minutes(length)}; at most "
            f"{format_minutes(rules.max_session_minutes)}",
        )


def _no_plan(patient: Patient) -> RuleViolation:
    reason = {
        "needs_review": "the screening is waiting for a prescriber's review",
        "ineligible": "the patient was screened ineligible",
    }.get(patient.last_screening_outcome or "", "the patient has not been screened eligible yet")
    return RuleViolation(r.PLAN, f"the patient has no treatment plan: {reason}")


async def _context(
    uow: UnitOfWork, plan: Plan, starts_at: datetime, ends_at: datetime, rules: SchedulingRules
) -> BookingContext:
    session = uow.session
    # Wide enough for SPR-SCH-4's chair block before an esketamine dosing session.
    pad = timedelta(minutes=rules.esketamine_check_in_minutes)
    nearby = await repo.overlapping_sessions(session, starts_at - pad, ends_at + pad)
    routes = await repo.routes_of(session, {s.plan_id for s in nearby})
    return BookingContext(
        plan=repo.to_plan(plan),
        site=await repo.site_info(session, plan.site_id),
        consents=repo.to_consents(await repo.consents_of(session, plan.patient_id)),
        holds=[repo.to_hold(h) for h in await repo.open_holds(session, plan.patient_id)],
        patient_sessions=[
            repo.to_slot(s) for s in await repo.patient_sessions(session, plan.patient_id)
        ],
        overlapping=[repo.to_slot(s, routes.get(s.plan_id)) for s in nearby],
        deadlines=[repo.to_deadline(d) for d in await repo.deadlines_of(session, plan.patient_id)],
    )


async def _therapist_for(
    uow: UnitOfWork, plan: Plan, phase: Phase, named: Clinician | None
) -> tuple[Clinician, bool]:
    """The session's therapist and whether they are at the chair. KAP-3: KAP protocols
    need the therapist at dosing; esketamine does not, and its dosing sessions name the
    plan's therapist (SessionScheduled requires one) without holding them. A therapist
    named on the request is at the chair."""
    if named is not None:
        return named, True
    at_chair = phase is not Phase.DOSING or protocol_for(Route(plan.route)).therapist_at_dosing
    if at_chair or plan.therapist_id is None:
        raise InvalidField(
            "therapist_id", f"required for a {phase.value} session of the {plan.protocol} plan"
        )
    return await _staff(uow, plan.therapist_id, Role.THERAPIST, "therapist_id"), False


def _proposal(
    phase: Phase,
    starts_at: datetime,
    ends_at: datetime,
    room: Room,
    therapist: Clinician,
    prescriber: Clinician | None,
    therapist_present: bool,
    replaces: str | None = None,
) -> Proposal:
    """What the booking rules judge, for a new booking or new times of a booked session."""
    return Proposal(
        phase=phase,
        starts_at=starts_at,
        ends_at=ends_at,
        room_id=room.room_id,
        room_site_id=room.site_id,
        therapist=repo.to_staff(therapist),
        prescriber=repo.to_staff(prescriber) if prescriber else None,
        replaces=replaces,
        therapist_present=therapist_present,
    )


# -- booking -----------------------------------------------------------------------------------


async def book_session(
    uow: UnitOfWork,
    patient: Patient,
    cmd: BookSession,
    booked_by: Principal,
    site_rules: SiteRules[SchedulingRules],
    now: datetime,
) -> TreatmentSession:
    starts_at, ends_at = cmd.starts_at.astimezone(UTC), cmd.ends_at.astimezone(UTC)
    room = await uow.session.get(Room, cmd.room_id)
    if room is None:
        raise InvalidField("room_id", f"unknown room {cmd.room_id}")
    therapist = (
        await _staff(uow, cmd.therapist_id, Role.THERAPIST, "therapist_id")
        if cmd.therapist_id
        else None
    )
    prescriber = (
        await _staff(uow, cmd.prescriber_id, Role.PRESCRIBER, "prescriber_id")
        if cmd.prescriber_id
        else None
    )
    nurse = await _staff(uow, cmd.nurse_id, Role.NURSE, "nurse_id") if cmd.nurse_id else None
    await repo.lock_bookings(uow.session)
    plan = await repo.latest_plan(uow.session, patient.patient_id)
    rules = site_rules.for_site(plan.site_id if plan else patient.site_id)
    _validate_times(starts_at, ends_at, now, rules)
    if plan is None:
        raise _no_plan(patient)
    therapist, present = await _therapist_for(uow, plan, cmd.phase, therapist)
    proposal = _proposal(cmd.phase, starts_at, ends_at, room, therapist, prescriber, present)
    ctx = await _context(uow, plan, starts_at, ends_at, rules)
    enforce(check_booking(proposal, ctx, rules))

    row = TreatmentSession(
        session_id=new_id(),
        plan_id=plan.plan_id,
        patient_id=plan.patient_id,
        site_id=plan.site_id,
        phase=cmd.phase.value,
        sequence=next_sequence(ctx.plan_sessions(None), cmd.phase),
        starts_at=starts_at,
        ends_at=ends_at,
        room_id=room.room_id,
        therapist_id=therapist.clinician_id,
        prescriber_id=prescriber.clinician_id if prescriber else None,
        nurse_id=nurse.clinician_id if nurse else None,
        therapist_present=present,
        status=SessionStatus.SCHEDULED.value,
        booked_by=booked_by.sub,
        booked_at=now,
    )
    uow.session.add(row)
    uow.publish(
        SessionScheduled(
            **plan_fields(plan, occurred_at=now),
            data=SessionScheduledData.model_validate(row, from_attributes=True),
        )
    )
    await uow.commit()
    return row


async def reschedule_session(
    uow: UnitOfWork,
    row: TreatmentSession,
    cmd: RescheduleSession,
    site_rules: SiteRules[SchedulingRules],
    now: datetime,
) -> TreatmentSession:
    """New times for a scheduled session; every booking rule is checked again."""
    starts_at, ends_at = cmd.starts_at.astimezone(UTC), cmd.ends_at.astimezone(UTC)
    rules = site_rules.for_site(row.site_id)
    _validate_times(starts_at, ends_at, now, rules)
    enforce(lifecycle.state_violation(repo.to_slot(row), "rescheduled", (SessionStatus.SCHEDULED,)))
    await repo.lock_bookings(uow.session)
    plan = await _plan_of(uow, row)
    room = await uow.session.get(Room, row.room_id)
    therapist = await uow.session.get(Clinician, row.therapist_id)
    prescriber = await uow.session.get(Clinician, row.prescriber_id) if row.prescriber_id else None
    if room is None or therapist is None:  # foreign keys guarantee them
        raise NotFound("room or therapist of session", row.session_id)
    proposal = _proposal(
        Phase(row.phase),
        starts_at,
        ends_at,
        room,
        therapist,
        prescriber,
        row.therapist_present,
        replaces=row.session_id,
    )
    enforce(check_booking(proposal, await _context(uow, plan, starts_at, ends_at, rules), rules))

    previous = row.starts_at
    row.starts_at, row.ends_at, row.rescheduled_at = starts_at, ends_at, now
    uow.session.add(row)
    uow.publish(
        SessionRescheduled(
            **plan_fields(plan, occurred_at=now),
            data=SessionRescheduledData(
                session_id=row.session_id,
                phase=Phase(row.phase),
                starts_at=starts_at,
                ends_at=ends_at,
                previous_starts_at=previous,
            ),
        )
    )
    await uow.commit()
    return row


async def cancel_session(
    uow: UnitOfWork, row: TreatmentSession, cmd: CancelSession, by: Principal, now: datetime
) -> TreatmentSession:
    enforce(
        lifecycle.state_violation(
            repo.to_slot(row), "cancelled", (SessionStatus.SCHEDULED, SessionStatus.CHECKED_IN)
        )
    )
    plan = await _plan_of(uow, row)
    cancel(uow, plan, row, reason=cmd.reason, note=cmd.note, by=by.sub, at=now)
    await uow.commit()
    return row


# -- check-in and completion ------------------------------------------------------------------


def _attestation(row: TreatmentSession, cmd: CheckIn, now: datetime) -> Attestation:
    if row.phase == Phase.DOSING.value:
        for field in ("last_food_at", "last_liquid_at", "transport_arranged"):
            if getattr(cmd, field) is None:
                raise InvalidField(field, "required to check in a dosing session")
    # kap_shared's clock skew: the front desk's clock may run slightly ahead of the server's.
    for field in ("last_food_at", "last_liquid_at"):
        value: datetime | None = getattr(cmd, field)
        if value is not None and in_the_future(value, now):
            raise InvalidField(field, f"{value.isoformat()} is in the future")
    return Attestation(cmd.last_food_at, cmd.last_liquid_at, cmd.transport_arranged)


async def check_in(
    uow: UnitOfWork,
    row: TreatmentSession,
    cmd: CheckIn,
    by: Principal,
    site_rules: SiteRules[SchedulingRules],
    now: datetime,
) -> TreatmentSession:
    attestation = _attestation(row, cmd, now)
    plan = await _plan_of(uow, row)
    slot = repo.to_slot(row)
    session = uow.session
    enforce(
        lifecycle.check_check_in(
            slot,
            plan=repo.to_plan(plan),
            site=await repo.site_info(session, row.site_id),
            consents=repo.to_consents(await repo.consents_of(session, row.patient_id)),
            holds=[repo.to_hold(h) for h in await repo.open_holds(session, row.patient_id)],
            attestation=attestation,
            now=now,
            rules=site_rules.for_site(row.site_id),
        )
    )
    row.status = SessionStatus.CHECKED_IN.value
    row.checked_in_at, row.checked_in_by = now, by.sub
    row.last_food_at = attestation.last_food_at
    row.last_liquid_at = attestation.last_liquid_at
    row.transport_arranged = attestation.transport_arranged
    uow.session.add(row)
    checked_in = SessionCheckedIn(
        **plan_fields(plan, occurred_at=now),
        data=SessionCheckedInData(
            session_id=row.session_id, phase=Phase(row.phase), checked_in_at=now
        ),
    )
    uow.publish(checked_in)
    to_phase = lifecycle.phase_after_check_in(repo.to_plan(plan), slot)
    if to_phase is not None:
        advance_phase(uow, plan, to_phase, causation_id=str(checked_in.event_id), occurred_at=now)
        await start_induction_clock(uow, plan, row, site_rules.for_site(row.site_id))
    await uow.commit()
    return row


async def complete_session(
    uow: UnitOfWork,
    row: TreatmentSession,
    by: Principal,
    site_rules: SiteRules[SchedulingRules],
    now: datetime,
) -> TreatmentSession:
    enforce(lifecycle.check_complete(repo.to_slot(row)))
    plan = await _plan_of(uow, row)
    row.status = SessionStatus.COMPLETED.value
    row.completed_at, row.completed_by = now, by.sub
    uow.session.add(row)
    sessions = await repo.patient_sessions(uow.session, row.patient_id)
    completed_dosing = sum(
        1
        for s in sessions
        if s.plan_id == plan.plan_id
        and s.phase == Phase.DOSING.value
        and s.status == SessionStatus.COMPLETED.value
    )
    rules = site_rules.for_site(row.site_id)
    dosing = row.phase == Phase.DOSING.value
    done = SessionCompleted(
        **plan_fields(plan, occurred_at=now),
        data=SessionCompletedData(
            session_id=row.session_id,
            phase=Phase(row.phase),
            completed_at=now,
            # Handoff facts for notifications (issue 11).
            plan_id=plan.plan_id,
            integration_due_by=(
                lifecycle.integration_due_by(Route(plan.route), now, rules) if dosing else None
            ),
            dosing_sessions_completed=completed_dosing,
            planned_dosing_sessions=plan.planned_dosing_sessions,
            open_dosing_holds=len(await repo.open_holds(uow.session, row.patient_id)),
        ),
    )
    row.completed_event_id = str(done.event_id)
    uow.publish(done)
    if dosing:
        await _integration_due(uow, plan, row, rules, now)
        to_phase = lifecycle.phase_after_completion(
            repo.to_plan(plan), repo.to_slot(row), completed_dosing
        )
        if to_phase is not None:
            advance_phase(uow, plan, to_phase, causation_id=str(done.event_id), occurred_at=now)
        await after_dosing_completed(uow, plan, completed_dosing, rules, now)
    elif row.phase == Phase.INTEGRATION.value:
        await _integration_done(uow, row, now)
    await uow.commit()
    return row


async def _integration_due(
    uow: UnitOfWork, plan: Plan, row: TreatmentSession, rules: SchedulingRules, now: datetime
) -> None:
    """KAP-2: the integration session owed after this dosing session, and a durable
    timer that reports it overdue (IntegrationOverdue) if it is not completed in time."""
    due_by = lifecycle.integration_due_by(Route(plan.route), now, rules)
    uow.session.add(
        IntegrationDeadline(
            dosing_session_id=row.session_id,
            plan_id=plan.plan_id,
            patient_id=row.patient_id,
            site_id=row.site_id,
            therapist_id=plan.therapist_id or row.therapist_id,
            due_by=due_by,
            status=DeadlineStatus.OPEN.value,
        )
    )
    await timers.schedule(
        uow.session,
        kind=INTEGRATION_DUE,
        key=deadline_key(row.session_id),
        due_at=due_by,
        payload={"dosing_session_id": row.session_id},
    )


async def _integration_done(uow: UnitOfWork, row: TreatmentSession, now: datetime) -> None:
    rows = await repo.deadlines_of(uow.session, row.patient_id)
    met = lifecycle.deadline_met_by([repo.to_deadline(d) for d in rows], row.therapist_id)
    if met is None:
        return
    deadline = next(d for d in rows if d.dosing_session_id == met.dosing_session_id)
    if met.status is DeadlineStatus.OPEN:
        deadline.status = DeadlineStatus.MET.value
        await timers.cancel(uow.session, deadline_key(deadline.dosing_session_id))
    else:
        deadline.status = DeadlineStatus.MET_LATE.value
    deadline.met_by_session_id, deadline.met_at = row.session_id, now
    uow.session.add(deadline)
