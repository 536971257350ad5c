"""HTTP API (CONTRACT section 4). Thin: authorize, audit, call a use case or a view
(queries and response models live in handlers/views.py)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel

from kap_shared.auth import Principal, ensure_site, require_roles
from kap_shared.events.enums import Role
from kap_shared.fhir import FhirResponse
from kap_shared.http.dependencies import Uow, runtime_of
from kap_shared.http.openapi import error_responses, keyed_post
from kap_shared.messaging.unit_of_work import UnitOfWork

from ..adapters import tables
from ..config import IntakeSettings
from ..domain.audit import AuditAction, AuditResource
from ..domain.commands import RecordConsent, RegisterPatient, ReviewScreening, ScreenPatient
from ..handlers import commands, views
from ..handlers.views import (
    AuditFilters,
    AuditView,
    ConsentView,
    DisplayNames,
    PatientView,
    ScreeningView,
)
from .audit import AuditEntry, BatchAuditEntry, audited, audited_batch
from .fhir import patient_resource

router = APIRouter(tags=["intake"])

CLINICAL = (Role.PRESCRIBER, Role.THERAPIST, Role.NURSE, Role.COORDINATOR, Role.ADMIN)
Clinician = Annotated[Principal, Depends(require_roles(*CLINICAL))]
Screener = Annotated[Principal, Depends(require_roles(Role.PRESCRIBER, Role.NURSE, Role.THERAPIST))]
Prescriber = Annotated[Principal, Depends(require_roles(Role.PRESCRIBER))]
Admin = Annotated[Principal, Depends(require_roles(Role.ADMIN))]

# The PHI access trail: each route's first parameter, so refusals are recorded too.
READ, CREATE, UPDATE = AuditAction.READ, AuditAction.CREATE, AuditAction.UPDATE
ReadsPatient = Annotated[AuditEntry, audited(READ, AuditResource.PATIENT)]
ReadsFhirPatient = Annotated[AuditEntry, audited(READ, AuditResource.FHIR_PATIENT)]
# At most this many patients per display-name request (one board of chairs, with room).
DISPLAY_NAMES_MAX = 200
ReadsDisplayNames = Annotated[
    BatchAuditEntry,
    audited_batch(READ, AuditResource.DISPLAY_NAME, limit=DISPLAY_NAMES_MAX),
]
CreatesPatient = Annotated[AuditEntry, audited(CREATE, AuditResource.PATIENT, success=201)]
Screens = Annotated[AuditEntry, audited(CREATE, AuditResource.SCREENING, success=201)]
Reviews = Annotated[AuditEntry, audited(UPDATE, AuditResource.SCREENING_REVIEW)]
Consents = Annotated[AuditEntry, audited(CREATE, AuditResource.CONSENT, success=201)]


class PatientCreated(BaseModel):
    patient_id: str


async def _patient_for(
    uow: UnitOfWork, patient_id: str, principal: Principal, entry: AuditEntry
) -> tables.Patient:
    patient = await commands.get_patient(uow, patient_id)
    entry.about(patient.patient_id, patient.site_id)
    ensure_site(principal, patient.site_id)
    return patient


@keyed_post(router, "/patients", PatientCreated, created=True)
async def register_patient(
    entry: CreatesPatient, cmd: RegisterPatient, principal: Clinician, uow: Uow
) -> PatientCreated:
    ensure_site(principal, cmd.site_id)
    async with uow:
        patient = await commands.register_patient(uow, cmd)
        entry.about(patient.patient_id, patient.site_id)
    return PatientCreated(patient_id=patient.patient_id)


@router.get(
    "/patients/display-names",
    response_model=DisplayNames,
    summary="Display names (given name, family initial) of several patients; each audited",
)
async def get_display_names(
    entry: ReadsDisplayNames,
    principal: Clinician,
    uow: Uow,
    ids: Annotated[
        list[str],
        Query(min_length=1, max_length=DISPLAY_NAMES_MAX, description="patient ids, repeated"),
    ],
) -> DisplayNames:
    """Same roles and site rule as `GET /patients/{id}`: one patient of a site not in
    the token refuses the whole request (403, nothing disclosed). Every patient asked
    about gets its own audit record (allowed, not found, or the refusal)."""
    async with uow:
        found = await views.patients(uow, ids)
        # Every patient's site is on its record before a refusal can stop the loop.
        for patient in found.values():
            entry.about(patient.patient_id, patient.site_id)
        for patient in found.values():
            ensure_site(principal, patient.site_id)
        names = views.display_names(ids, found)
    for unknown in names.not_found:
        entry.answered(unknown, 404)
    return names


@router.get("/patients/{patient_id}", response_model=PatientView, responses=error_responses(404))
async def get_patient(
    entry: ReadsPatient, patient_id: str, principal: Clinician, uow: Uow
) -> PatientView:
    async with uow:
        patient = await _patient_for(uow, patient_id, principal, entry)
        return await views.patient_view(uow, patient)


@keyed_post(router, "/patients/{patient_id}/screenings", ScreeningView, 404, created=True)
async def screen_patient(
    entry: Screens,
    patient_id: str,
    cmd: ScreenPatient,
    principal: Screener,
    uow: Uow,
    request: Request,
) -> ScreeningView:
    settings: IntakeSettings = runtime_of(request).settings  # type: ignore[assignment]
    async with uow:
        patient = await _patient_for(uow, patient_id, principal, entry)
        screening = await commands.screen_patient(
            uow, patient, cmd, settings.screening_rules.for_site(patient.site_id), principal
        )
    return ScreeningView(**screening.model_dump())


@keyed_post(
    router, "/patients/{patient_id}/screenings/{screening_id}/review", ScreeningView, 404, 409
)
async def review_screening(
    entry: Reviews,
    patient_id: str,
    screening_id: str,
    cmd: ReviewScreening,
    principal: Prescriber,
    uow: Uow,
) -> ScreeningView:
    async with uow:
        patient = await _patient_for(uow, patient_id, principal, entry)
        screening = await commands.review_screening(uow, patient, screening_id, cmd, principal)
    return ScreeningView(**screening.model_dump())


@keyed_post(router, "/patients/{patient_id}/consents", ConsentView, 404, created=True)
async def record_consent(
    entry: Consents, patient_id: str, cmd: RecordConsent, principal: Clinician, uow: Uow
) -> ConsentView:
    async with uow:
        patient = await _patient_for(uow, patient_id, principal, entry)
        consent = await commands.record_consent(uow, patient, cmd, principal)
    return ConsentView(**consent.model_dump())


@router.get(
    "/fhir/Patient/{patient_id}",
    response_class=FhirResponse,
    responses=error_responses(404),
    tags=["fhir"],
    summary="The patient as a FHIR R4 Patient (PHI; audited)",
)
async def get_fhir_patient(
    entry: ReadsFhirPatient, patient_id: str, principal: Clinician, uow: Uow
) -> FhirResponse:
    """identifier = the pseudonymous id the events carry; name, birthDate, telecom."""
    async with uow:
        patient = await _patient_for(uow, patient_id, principal, entry)
        return FhirResponse(patient_resource(patient))


@router.get("/audit", response_model=list[AuditView], tags=["audit"])
async def search_audit(
    principal: Admin,
    uow: Uow,
    patient_id: str | None = None,
    actor: str | None = None,
    since: Annotated[datetime | None, Query(description="inclusive")] = None,
    until: Annotated[datetime | None, Query(description="exclusive")] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    # Bounded (a database integer); older records are reached with `until`.
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
) -> list[AuditView]:
    """Who read or wrote which patient's PHI, newest first (admins; an admin without
    `*` sees the records of their own sites)."""
    filters = AuditFilters(patient_id, actor, since, until, limit, offset)
    async with uow:
        return await views.audit_trail(uow, principal, filters)
