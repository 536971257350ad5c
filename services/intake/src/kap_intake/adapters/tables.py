"""Intake's tables. Only here do names, birth dates and contacts live (PHI)."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import Connection, Table, event
from sqlmodel import Field, SQLModel, select

from kap_shared.db import append_only_ddl, json_column, service_registry
from kap_shared.events.envelope import new_id, utc_now
from kap_shared.phi import phi_column

REGISTRY = service_registry()


class IntakeTable(SQLModel, registry=REGISTRY):
    """Base of intake's tables: they live on intake's own metadata."""


__all__ = ["REGISTRY", "AuditRecord", "Consent", "Patient", "Screening", "select"]


class Patient(IntakeTable, table=True):
    __tablename__ = "patients"

    patient_id: str = Field(primary_key=True, max_length=36)
    site_id: str = Field(index=True, max_length=64)
    given_name: str = phi_column()
    family_name: str = phi_column()
    date_of_birth: date = phi_column()
    phone: str | None = phi_column(default=None)
    email: str | None = phi_column(default=None)
    indications: list[str] = json_column()
    referral_source: str | None = None
    correlation_id: str = Field(max_length=36)
    created_at: datetime = Field(default_factory=utc_now)


class Screening(IntakeTable, table=True):
    __tablename__ = "screenings"

    screening_id: str = Field(primary_key=True, max_length=36)
    patient_id: str = Field(foreign_key="patients.patient_id", index=True)
    route: str
    outcome: str
    reasons: list[str] = json_column()
    contraindications: list[dict[str, Any]] = json_column()
    baseline: dict[str, Any] = json_column()
    scores: dict[str, Any] = json_column()
    reviewed_by: str | None = None
    review_decision: str | None = None
    review_reason: str | None = None
    review_note: str | None = phi_column(default=None)  # free text: never leaves intake
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


class AuditRecord(IntakeTable, table=True):
    """Who read or wrote which patient's PHI, and with what outcome (HIPAA audit
    controls). Append-only: no code path updates or deletes a row, and the database
    refuses it (triggers below). Rows never leave intake's database."""

    __tablename__ = "audit_records"

    audit_id: str = Field(default_factory=new_id, primary_key=True, max_length=36)
    at: datetime = Field(default_factory=utc_now, index=True)
    # Unbounded: whatever a caller sends (a long id, a header) must not stop the record.
    actor: str | None = Field(default=None, index=True)
    role: str | None = None
    actor_sites: list[str] = json_column(list)
    site_id: str | None = None
    patient_id: str | None = Field(default=None, index=True)
    action: str  # AuditAction
    resource: str  # AuditResource
    method: str = Field(max_length=8)
    path: str
    status: int
    outcome: str  # AuditOutcome
    trace_id: str | None = Field(default=None, max_length=32)
    request_id: str | None = None


# The database itself refuses to change the trail (the Alembic revision runs the same
# statements; these cover DB_SCHEMA=create_all).
APPEND_ONLY_DDL = append_only_ddl("audit_records")


@event.listens_for(AuditRecord.__table__, "after_create")  # type: ignore[attr-defined]
def _append_only(_table: Table, connection: Connection, **_: Any) -> None:
    for statement in APPEND_ONLY_DDL.get(connection.dialect.name, ()):
        connection.exec_driver_sql(statement)
