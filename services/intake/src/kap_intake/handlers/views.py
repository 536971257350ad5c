"""What intake's read endpoints answer: response models and the queries that build
them (the routes stay thin: authorize, audit, call a view)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from pydantic import BaseModel
from sqlmodel import col, select

from kap_shared.auth import Principal
from kap_shared.events.envelope import as_utc
from kap_shared.messaging.unit_of_work import UnitOfWork

from ..adapters import tables
from ..domain.audit import AuditAction, AuditResource
from ..domain.model import display_name
from . import audit


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


class DisplayName(BaseModel):
    patient_id: str
    site_id: str
    display_name: str


class DisplayNames(BaseModel):
    patients: list[DisplayName]
    # Ids intake does not know (each audited as not found).
    not_found: list[str]


class AuditView(BaseModel):
    audit_id: str
    at: datetime
    actor: str | None
    role: str | None
    actor_sites: list[str]
    site_id: str | None
    patient_id: str | None
    action: AuditAction
    resource: AuditResource
    method: str
    path: str
    status: int
    outcome: str
    trace_id: str | None
    request_id: str | None


async def patient_view(uow: UnitOfWork, patient: tables.Patient) -> PatientView:
    screenings = await uow.session.exec(
        select(tables.Screening).where(tables.Screening.patient_id == patient.patient_id)
    )
    consents = await uow.session.exec(
        select(tables.Consent).where(tables.Consent.patient_id == patient.patient_id)
    )
    return PatientView(
        **patient.model_dump(),
        screenings=[ScreeningView(**s.model_dump()).model_dump(mode="json") for s in screenings],
        consents=[ConsentView(**c.model_dump()).model_dump(mode="json") for c in consents],
    )


async def patients(uow: UnitOfWork, patient_ids: list[str]) -> dict[str, tables.Patient]:
    """The known ones among `patient_ids`, by id (one query)."""
    found = await uow.session.exec(
        select(tables.Patient).where(col(tables.Patient.patient_id).in_(set(patient_ids)))
    )
    return {p.patient_id: p for p in found}


def display_names(patient_ids: list[str], found: dict[str, tables.Patient]) -> DisplayNames:
    """In the order asked, each id once."""
    ordered = list(dict.fromkeys(patient_ids))
    return DisplayNames(
        patients=[
            DisplayName(
                patient_id=p.patient_id,
                site_id=p.site_id,
                display_name=display_name(p.given_name, p.family_name),
            )
            for p in (found[i] for i in ordered if i in found)
        ],
        not_found=[i for i in ordered if i not in found],
    )


@dataclass(frozen=True)
class AuditFilters:
    """`GET /audit`'s query parameters."""

    patient_id: str | None
    actor: str | None
    since: datetime | None
    until: datetime | None
    limit: int
    offset: int


async def audit_trail(
    uow: UnitOfWork, principal: Principal, filters: AuditFilters
) -> list[AuditView]:
    """Newest first; an admin without `*` sees the records of their own sites."""
    query = audit.AuditQuery(
        patient_id=filters.patient_id,
        actor=filters.actor,
        since=as_utc(filters.since) if filters.since else None,
        until=as_utc(filters.until) if filters.until else None,
        sites=None if principal.all_sites else tuple(principal.sites),
        limit=filters.limit,
        offset=filters.offset,
    )
    records = await audit.search(uow.session, query)
    return [AuditView.model_validate(r, from_attributes=True) for r in records]
