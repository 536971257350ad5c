"""Treatment plans: created when a patient is screened eligible, staffed
with a care team from the site's directory."""

from __future__ import annotations

from sqlalchemy import func
from sqlmodel import col

from kap_shared.events import PatientScreened, PhaseAdvanced, TreatmentPlanCreated, new_id
from kap_shared.events.enums import Phase, Role, Route, ScreeningOutcome
from kap_shared.events.scheduling import PhaseAdvancedData, TreatmentPlanCreatedData
from kap_shared.logging import get_logger
from kap_shared.messaging.unit_of_work import UnitOfWork

from ..adapters.tables import Clinician, Plan, select
from ..domain.care_team import Candidate, choose_care_team
from ..domain.protocols import protocol_for

PRODUCER = "scheduling"
log = get_logger(__name__)


async def on_patient_screened(event: PatientScreened, uow: UnitOfWork) -> None:
    outcome = event.data.outcome
    current = await _current_plan(uow, event.patient_id)
    if outcome is ScreeningOutcome.ELIGIBLE and current is None:
        await _create_plan(event, uow)
    elif outcome is ScreeningOutcome.INELIGIBLE and current is not None:
        current.status = "suspended"
        uow.session.add(current)
        log.info("plan.suspended", plan_id=current.plan_id)


async def _current_plan(uow: UnitOfWork, patient_id: str) -> Plan | None:
    result = await uow.session.exec(
        select(Plan)
        .where(Plan.patient_id == patient_id)
        .where(col(Plan.status).in_(["awaiting_care_team", "active"]))
    )
    return result.first()


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
        status="awaiting_care_team",
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
    plan.status, plan.phase = "active", Phase.PREPARATION.value
    uow.session.add(plan)
    common = {
        "producer": PRODUCER,
        "site_id": plan.site_id,
        "patient_id": plan.patient_id,
        "correlation_id": plan.correlation_id,
        "causation_id": plan.source_event_id,
    }
    uow.publish(
        TreatmentPlanCreated(
            **common,
            data=TreatmentPlanCreatedData(
                plan_id=plan.plan_id,
                route=Route(plan.route),
                protocol=plan.protocol,
                prescriber_id=team.prescriber_id,
                therapist_id=team.therapist_id,
                planned_dosing_sessions=plan.planned_dosing_sessions,
            ),
        )
    )
    uow.publish(
        PhaseAdvanced(
            **common,
            data=PhaseAdvancedData(
                plan_id=plan.plan_id, from_phase=None, to_phase=Phase.PREPARATION
            ),
        )
    )
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
            select(column, func.count()).where(Plan.status == "active").group_by(column)
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
        .where(Plan.status == "awaiting_care_team")
        .where(col(Plan.site_id).in_(site_ids))
        .order_by(col(Plan.created_at))
    )
    staffed = 0
    for plan in list(waiting):
        staffed += await staff_plan(uow, plan)
    return staffed
