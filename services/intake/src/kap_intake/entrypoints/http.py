"""HTTP API (CONTRACT section 4). Thin: authorize, translate, call a use case."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel

from kap_shared.auth import Principal, ensure_site, require_roles
from kap_shared.events.enums import Role
from kap_shared.http.idempotency import IdempotencyKey
from kap_shared.messaging.unit_of_work import UnitOfWork
from kap_shared.service.runtime import ServiceRuntime

from ..adapters import tables
from ..config import IntakeSettings
from ..domain.commands import RecordConsent, RegisterPatient, ReviewScreening, ScreenPatient
from ..handlers import commands

router = APIRouter(tags=["intake"])

CLINICAL = (Role.PRESCRIBER, Role.THERAPIST, Role.NURSE, Role.COORDINATOR, Role.ADMIN)
Clinician = Annotated[Principal, Depends(require_roles(*CLINICAL))]
Screener = Annotated[Principal, Depends(require_roles(Role.PRESCRIBER, Role.NURSE, Role.THERAPIST))]
Prescriber = Annotated[Principal, Depends(require_roles(Role.PRESCRIBER))]


def _runtime(request: Request) -> ServiceRuntime:
    runtime: ServiceRuntime = request.app.state.runtime
    return runtime


def _uow(request: Request) -> UnitOfWork:
    return _runtime(request).unit_of_work()


Uow = Annotated[UnitOfWork, Depends(_uow)]


class PatientCreated(BaseModel):
    patient_id: str


class PatientView(BaseModel):
    patient_id: str
    site_id: str
    given_name: str
    family_name: str
    date_of_birth: date
    phone: str | None
    email: str | None
    indications: list[str]
    referral_source: str | None
    created_at: datetime
    screenings: list[dict[str, Any]]
    consents: list[dict[str, Any]]


class ScreeningView(BaseModel):
    screening_id: str
    patient_id: str
    route: str
    outcome: str
    reasons: list[str]
    contraindications: list[dict[str, Any]]
    baseline: dict[str, Any]
    scores: dict[str, Any]
    reviewed_by: str | None
    review_decision: str | None
    review_reason: str | None


class ConsentView(BaseModel):
    consent_id: str
    patient_id: str
    scope: str
    granted: bool
    recorded_at: datetime


async def _patient_for(uow: UnitOfWork, patient_id: str, principal: Principal) -> tables.Patient:
    patient = await commands.get_patient(uow, patient_id)
    ensure_site(principal, patient.site_id)
    return patient


@router.post(
    "/patients", dependencies=[IdempotencyKey], status_code=201, response_model=PatientCreated
)
async def register_patient(cmd: RegisterPatient, principal: Clinician, uow: Uow) -> PatientCreated:
    ensure_site(principal, cmd.site_id)
    async with uow:
        patient = await commands.register_patient(uow, cmd)
    return PatientCreated(patient_id=patient.patient_id)


@router.get("/patients/{patient_id}", response_model=PatientView)
async def get_patient(patient_id: str, principal: Clinician, uow: Uow) -> PatientView:
    async with uow:
        patient = await _patient_for(uow, patient_id, principal)
        screenings = await uow.session.exec(
            tables.select(tables.Screening).where(tables.Screening.patient_id == patient_id)
        )
        consents = await uow.session.exec(
            tables.select(tables.Consent).where(tables.Consent.patient_id == patient_id)
        )
        return PatientView(
            **patient.model_dump(),
            screenings=[
                ScreeningView(**s.model_dump()).model_dump(mode="json") for s in screenings
            ],
            consents=[ConsentView(**c.model_dump()).model_dump(mode="json") for c in consents],
        )


@router.post(
    "/patients/{patient_id}/screenings",
    dependencies=[IdempotencyKey],
    status_code=201,
    response_model=ScreeningView,
)
async def screen_patient(
    patient_id: str, cmd: ScreenPatient, principal: Screener, uow: Uow, request: Request
) -> ScreeningView:
    settings: IntakeSettings = _runtime(request).settings  # type: ignore[assignment]
    async with uow:
        patient = await _patient_for(uow, patient_id, principal)
        screening = await commands.screen_patient(
            uow, patient, cmd, settings.screening_rules.for_site(patient.site_id), principal
        )
    return ScreeningView(**screening.model_dump())


@router.post(
    "/patients/{patient_id}/screenings/{screening_id}/review",
    dependencies=[IdempotencyKey],
    status_code=200,
    response_model=ScreeningView,
)
async def review_screening(
    patient_id: str, screening_id: str, cmd: ReviewScreening, principal: Prescriber, uow: Uow
) -> ScreeningView:
    async with uow:
        patient = await _patient_for(uow, patient_id, principal)
        screening = await commands.review_screening(uow, patient, screening_id, cmd, principal)
    return ScreeningView(**screening.model_dump())


@router.post(
    "/patients/{patient_id}/consents",
    dependencies=[IdempotencyKey],
    status_code=201,
    response_model=ConsentView,
)
async def record_consent(
    patient_id: str, cmd: RecordConsent, principal: Clinician, uow: Uow
) -> ConsentView:
    async with uow:
        patient = await _patient_for(uow, patient_id, principal)
        consent = await commands.record_consent(uow, patient, cmd, principal)
    return ConsentView(**consent.model_dump())
