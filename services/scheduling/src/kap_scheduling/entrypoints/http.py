"""HTTP API (CONTRACT section 4). Thin: authorize, translate, call a use case."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel

from kap_shared.auth import Principal, ensure_site, require_roles
from kap_shared.events.enums import Role
from kap_shared.http.errors import NotFound
from kap_shared.messaging.unit_of_work import UnitOfWork
from kap_shared.service.runtime import ServiceRuntime

from ..adapters.tables import Plan, select
from ..domain.commands import AddRoom, CreateClinician, CreateSite
from ..handlers import directory

router = APIRouter(tags=["scheduling"])

Admin = Annotated[Principal, Depends(require_roles(Role.ADMIN, Role.COORDINATOR))]
Clinician = Annotated[
    Principal,
    Depends(
        require_roles(Role.PRESCRIBER, Role.THERAPIST, Role.NURSE, Role.COORDINATOR, Role.ADMIN)
    ),
]


def _uow(request: Request) -> UnitOfWork:
    runtime: ServiceRuntime = request.app.state.runtime
    return runtime.unit_of_work()


Uow = Annotated[UnitOfWork, Depends(_uow)]


class SiteView(BaseModel):
    site_id: str
    name: str
    timezone: str
    rems_certified_until: date | None


class RoomView(BaseModel):
    room_id: str
    site_id: str
    name: str


class ClinicianView(BaseModel):
    clinician_id: str
    role: str
    sites: list[str]
    working_hours: dict[str, Any]


class PlanView(BaseModel):
    plan_id: str
    patient_id: str
    site_id: str
    status: str
    phase: str | None
    route: str
    protocol: str
    planned_dosing_sessions: int
    prescriber_id: str | None
    therapist_id: str | None
    created_at: datetime
    sessions: list[dict[str, Any]]
    holds: list[dict[str, Any]]
    next_action: str


@router.post("/sites", status_code=201, response_model=SiteView)
async def create_site(cmd: CreateSite, principal: Admin, uow: Uow) -> SiteView:
    ensure_site(principal, cmd.site_id)
    async with uow:
        site = await directory.create_site(uow, cmd)
    return SiteView(**site.model_dump())


@router.post("/sites/{site_id}/rooms", status_code=201, response_model=RoomView)
async def add_room(site_id: str, cmd: AddRoom, principal: Admin, uow: Uow) -> RoomView:
    ensure_site(principal, site_id)
    async with uow:
        room = await directory.add_room(uow, site_id, cmd)
    return RoomView(**room.model_dump())


@router.post("/clinicians", status_code=201, response_model=ClinicianView)
async def create_clinician(cmd: CreateClinician, principal: Admin, uow: Uow) -> ClinicianView:
    for site_id in cmd.sites:
        ensure_site(principal, site_id)
    async with uow:
        clinician = await directory.create_clinician(uow, cmd)
    return ClinicianView(**clinician.model_dump())


def _next_action(plan: Plan) -> str:
    if plan.status == "awaiting_care_team":
        return "Add a prescriber and a therapist at this site so the plan can start."
    if plan.status == "suspended":
        return "Plan suspended after an ineligible screening; a prescriber must re-screen."
    return "Book the first preparation session with the therapist."


@router.get("/patients/{patient_id}/plan", response_model=PlanView)
async def get_plan(patient_id: str, principal: Clinician, uow: Uow) -> PlanView:
    async with uow:
        plans = await uow.session.exec(
            select(Plan).where(Plan.patient_id == patient_id).order_by(Plan.created_at.desc())  # type: ignore[attr-defined]
        )
        plan = plans.first()
        if plan is None:
            raise NotFound("plan for patient", patient_id)
        ensure_site(principal, plan.site_id)
        return PlanView(**plan.model_dump(), sessions=[], holds=[], next_action=_next_action(plan))
