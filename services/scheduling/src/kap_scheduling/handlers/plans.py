"""Treatment plans: created when a patient is screened eligible (or approved on
review), staffed with a care team from the site's directory, suspended by an
ineligible screening."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime

from sqlalchemy import func
from sqlmodel import col, select

from kap_shared.events import PatientScreened, TreatmentPlanCreated, new_id
from kap_shared.events.enums import Phase, Role, ScreeningOutcome, Severity
from kap_shared.events.scheduling import TreatmentPlanCreatedData
from kap_shared.logging import get_logger
from kap_shared.messaging.unit_of_work import UnitOfWork
from kap_shared.rules import SiteRules

from ..adapters import repository
from ..adapters.tables import Clinician, Patient, Plan
from ..domain import rules as r
from ..domain.care_team import Candidate, choose_care_team
from ..domain.commands import PLAN_SUSPENDED
from ..domain.model import UNMET_DEADLINES, DeadlineStatus, PlanStatus, SessionStatus
from ..domain.protocols import protocol_for
from ..domain.rules import SchedulingRules
from .events import PRODUCER, advance_phase, cancel, plan_fields
from .holds import open_hold

log = get_logger(__name__)

CURRENT = (PlanStatus.AWAITING_CARE_TEAM.value, PlanStatus.ACTIVE.value)


async def remember_patient(
    uow: UnitOfWork,
    patient_id: str,
    site_id: str,
    correlation_id: str,
    *,
    at: datetime,
    screening_outcome: str | None = None,
) -> Patient:
    """Scheduling's record of a patient it has heard of: site and care episode (no PHI)."""
    patient = await uow.session.get(Patient, patient_id)
    if patient is None:
        patient = Patient(patient_id=patient_id, site_id=site_id, correlation_id=correlation_id)
    patient.site_id, patient.correlation_id, patient.updated_at = site_id, correlation_id, at
    if screening_outcome is not None:
        patient.last_screening_outcome = screening_outcome
    uow.session.add(patient)
    return patient


def on_patient_screened(
    site_rules: SiteRules[SchedulingRules],
) -> Callable[[PatientScreened, UnitOfWork], Awaitable[None]]:
    async def handle(event: PatientScreened, uow: UnitOfWork) -> None:
        outcome = event.data.outcome
        await remember_patient(
            uow,
            event.patient_id,
            event.site_id,
            event.correlation_id,
            at=event.occurred_at,
            screening_outcome=outcome.value,
        )
        current = await _current_plan(uow, event.patient_id)
        if current is not None and rescreened_at_risk(event):
            # MBC-1 at a re-screening: the same dosing hold as an in-session concern.
            open_hold(
                uow,
                site_rules.for_site(event.site_id),
                patient_id=event.patient_id,
                site_id=event.site_id,
                source=RESCREEN_SOURCE,
                value=event.data.baseline.phq9_item9,
                severity=Severity.CRITICAL,
                raised_at=event.occurred_at,
                source_event_id=str(event.event_id),
            )
        if outcome is ScreeningOutcome.ELIGIBLE and current is None:
            await _create_plan(event, uow)
        elif outcome is ScreeningOutcome.INELIGIBLE and current is not None:
            await suspend_plan(uow, current, event)

    return handle


RESCREEN_SOURCE = "PHQ-9 item 9 (re-screening)"


def rescreened_at_risk(event: PatientScreened) -> bool:
    """A new screening citing MBC-1. A prescriber's review of it repeats the reasons
    (reviewed_by set) and must not open a second hold."""
    return r.SELF_HARM_AT_SCREENING in event.data.reasons and event.data.reviewed_by is None


async def _current_plan(uow: UnitOfWork, patient_id: str) -> Plan | None:
    result = await uow.session.exec(
        select(Plan).where(Plan.patient_id == patient_id).where(col(Plan.status).in_(CURRENT))
    )
    return result.first()


async def suspend_plan(uow: UnitOfWork, plan: Plan, event: PatientScreened) -> None:
    """An ineligible screening suspends the plan: its booked sessions are cancelled
    (SessionCancelled, reason plan_suspended), except integration sessions while an
    integration is still owed after a completed dosing session."""
    plan.status = PlanStatus.SUSPENDED.value
    plan.suspended_at = event.occurred_at
    uow.session.add(plan)
    deadlines = await repository.deadlines_of(uow.session, plan.patient_id)
    owed = any(DeadlineStatus(d.status) in UNMET_DEADLINES for d in deadlines)
    for row in await repository.patient_sessions(uow.session, plan.patient_id):
        if row.plan_id != plan.plan_id or row.status != SessionStatus.SCHEDULED.value:
            continue
        if owed and row.phase == Phase.INTEGRATION.value:
            continue
        cancel(
            uow,
            plan,
            row,
            reason=PLAN_SUSPENDED,
            by=PRODUCER,
            at=event.occurred_at,
            causation_id=str(event.event_id),
        )
    log.info("plan.suspended", plan_id=plan.plan_id)


async def _create_plan(event: PatientScreened, uow: UnitOfWork) -> None:
    protocol = protocol_for(event.data.route)
    plan = Plan(
        plan_id=new_id(),
        patient_id=event.patient_id,
        site_id=event.site_id,
        screening_id=event.data.screening_id,
        correlation_id=event.correlation_id,
        route=event.data.route.value,
        protocol=protocol.name,
        planned_dosing_sessions=protocol.planned_dosing_sessions,
        status=PlanStatus.AWAITING_CARE_TEAM.value,
        baseline=event.data.baseline.model_dump(mode="json"),
        source_event_id=str(event.event_id),
    )
    uow.session.add(plan)
    await staff_plan(uow, plan)


async def staff_plan(uow: UnitOfWork, plan: Plan) -> bool:
    """Assign a care team and activate the plan; False when the site lacks one."""
    team = choose_care_team(await _candidates(uow, plan.site_id))
    if team is None:
        log.warning("plan.awaiting_care_team", plan_id=plan.plan_id, site_id=plan.site_id)
        return False
    plan.prescriber_id, plan.therapist_id = team.prescriber_id, team.therapist_id
    plan.status = PlanStatus.ACTIVE.value
    uow.session.add(plan)
    uow.publish(
        TreatmentPlanCreated(
            **plan_fields(plan, causation_id=plan.source_event_id),
            data=TreatmentPlanCreatedData.model_validate(plan, from_attributes=True),
        )
    )
    advance_phase(uow, plan, Phase.PREPARATION, causation_id=plan.source_event_id)
    log.info("plan.activated", plan_id=plan.plan_id, protocol=plan.protocol)
    return True


async def _candidates(uow: UnitOfWork, site_id: str) -> list[Candidate]:
    clinicians = [
        c
        for c in await uow.session.exec(select(Clinician))
        if site_id in c.sites and c.role in (Role.PRESCRIBER, Role.THERAPIST)
    ]
    load: dict[str, int] = {}
    for column in (Plan.prescriber_id, Plan.therapist_id):
        rows = await uow.session.exec(
            select(column, func.count())
            .where(Plan.status == PlanStatus.ACTIVE.value)
            .group_by(column)
        )
        for clinician_id, count in rows:
            if clinician_id:
                load[clinician_id] = load.get(clinician_id, 0) + count
    return [
        Candidate(c.clinician_id, Role(c.role), load.get(c.clinician_id, 0)) for c in clinicians
    ]


async def staff_waiting_plans(uow: UnitOfWork, site_ids: list[str]) -> int:
    """A clinician joined: plans that waited for a care team at their sites get one."""
    waiting = await uow.session.exec(
        select(Plan)
        .where(Plan.status == PlanStatus.AWAITING_CARE_TEAM.value)
        .where(col(Plan.site_id).in_(site_ids))
        .order_by(col(Plan.created_at))
    )
    staffed = 0
    for plan in list(waiting):
        staffed += await staff_plan(uow, plan)
    return staffed
