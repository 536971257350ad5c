"""Intake's tables. Only here do names, birth dates and contacts live (PHI)."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import JSON, Column
from sqlmodel import Field, SQLModel, select

from kap_shared.db import service_registry
from kap_shared.events.envelope import utc_now

REGISTRY = service_registry()


class IntakeTable(SQLModel, registry=REGISTRY):
    """Base of intake's tables: they live on intake's own metadata."""


__all__ = ["REGISTRY", "Consent", "Patient", "Screening", "select"]


class Patient(IntakeTable, table=True):
    __tablename__ = "patients"

    patient_id: str = Field(primary_key=True, max_length=36)
    site_id: str = Field(index=True, max_length=64)
    given_name: str
    family_name: str
    date_of_birth: date
    phone: str | None = None
    email: str | None = None
    indications: list[str] = Field(sa_column=Column(JSON, nullable=False))
    referral_source: str | None = None
    correlation_id: str = Field(max_length=36)
    created_at: datetime = Field(default_factory=utc_now)


class Screening(IntakeTable, table=True):
    __tablename__ = "screenings"

    screening_id: str = Field(primary_key=True, max_length=36)
    patient_id: str = Field(foreign_key="patients.patient_id", index=True)
    route: str
    outcome: str
    reasons: list[str] = Field(sa_column=Column(JSON, nullable=False))
    contraindications: list[dict[str, Any]] = Field(sa_column=Column(JSON, nullable=False))
    baseline: dict[str, Any] = Field(sa_column=Column(JSON, nullable=False))
    scores: dict[str, Any] = Field(sa_column=Column(JSON, nullable=False))
    reviewed_by: str | None = None
    review_decision: str | None = None
    review_reason: str | None = None
    review_note: str | None = None  # free text: never leaves intake
    screened_by: str
    created_at: datetime = Field(default_factory=utc_now)


class Consent(IntakeTable, table=True):
    __tablename__ = "consents"

    consent_id: str = Field(primary_key=True, max_length=36)
    patient_id: str = Field(foreign_key="patients.patient_id", index=True)
    scope: str
    granted: bool
    recorded_by: str
    recorded_at: datetime = Field(default_factory=utc_now)
