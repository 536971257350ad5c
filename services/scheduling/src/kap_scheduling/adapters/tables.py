"""Scheduling's tables: the clinic network directory, what scheduling knows of
each patient (site, consents, safety holds), treatment plans, sessions and
integration deadlines. Times are stored in UTC (SQLModel's UTCDateTime)."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import UniqueConstraint
from sqlmodel import Field, SQLModel

from kap_shared.db import ScopeColumns, json_column, service_registry
from kap_shared.events.envelope import utc_now

REGISTRY = service_registry()


class SchedulingTable(SQLModel, registry=REGISTRY):
    """Base of scheduling's tables: they live on scheduling's own metadata."""


class Site(SchedulingTable, table=True):
    __tablename__ = "sites"

    site_id: str = Field(primary_key=True, max_length=64)
    name: str
    timezone: str = "UTC"
    # Spravato REMS certification of the setting (SPR-CERT-1): valid through this day;
    # None = not certified.
    rems_certified_until: date | None = None


class Room(SchedulingTable, table=True):
    __tablename__ = "rooms"

    room_id: str = Field(primary_key=True, max_length=64)
    site_id: str = Field(foreign_key="sites.site_id", index=True)
    name: str


class Clinician(SchedulingTable, table=True):
    __tablename__ = "clinicians"

    clinician_id: str = Field(primary_key=True, max_length=64)
    role: str
    sites: list[str] = json_column()
    # {"mon": {"start": "08:00:00", "end": "17:00:00"}, ...} in the site's local time.
    working_hours: dict[str, Any] = json_column(dict, nullable=True)


class Patient(SchedulingTable, table=True):
    """A patient scheduling has heard of (screened, consented or flagged): no PHI."""

    __tablename__ = "patients"

    patient_id: str = Field(primary_key=True, max_length=64)
    site_id: str = Field(index=True, max_length=64)
    correlation_id: str
    last_screening_outcome: str | None = None
    updated_at: datetime = Field(default_factory=utc_now)


class Consent(SchedulingTable, table=True):
    """The latest consent decision per patient and scope (withdrawal = granted false)."""

    __tablename__ = "consents"

    patient_id: str = Field(primary_key=True, max_length=64)
    scope: str = Field(primary_key=True, max_length=32)
    consent_id: str = Field(max_length=64)
    granted: bool
    recorded_at: datetime
    source_event_id: str = Field(max_length=36)


class Plan(SchedulingTable, table=True):
    __tablename__ = "plans"
    __table_args__ = (UniqueConstraint("patient_id", "screening_id"),)

    plan_id: str = Field(primary_key=True, max_length=36)
    patient_id: str = Field(index=True, max_length=64)
    site_id: str = Field(index=True, max_length=64)
    screening_id: str
    correlation_id: str
    route: str
    protocol: str
    planned_dosing_sessions: int
    # awaiting_care_team -> active -> suspended
    status: str = Field(index=True)
    phase: str | None = None
    prescriber_id: str | None = Field(default=None, index=True)
    therapist_id: str | None = Field(default=None, index=True)
    baseline: dict[str, Any] = json_column(dict, nullable=True)
    source_event_id: str
    created_at: datetime = Field(default_factory=utc_now)
    suspended_at: datetime | None = None
    # SPR-SCH-1: when InductionReviewDue was published (once), and after how many
    # completed dosing sessions.
    induction_review_due_at: datetime | None = None
    induction_review_sessions: int | None = None


class TreatmentSession(SchedulingTable, table=True):
    """A booked session: scheduled -> checked_in -> completed, or cancelled."""

    __tablename__ = "sessions"

    session_id: str = Field(primary_key=True, max_length=36)
    plan_id: str = Field(foreign_key="plans.plan_id", index=True)
    patient_id: str = Field(index=True, max_length=64)
    site_id: str = Field(index=True, max_length=64)
    phase: str = Field(max_length=16)
    sequence: int
    starts_at: datetime = Field(index=True)
    ends_at: datetime = Field(index=True)
    room_id: str = Field(foreign_key="rooms.room_id", index=True)
    therapist_id: str = Field(foreign_key="clinicians.clinician_id", index=True)
    prescriber_id: str | None = Field(
        default=None, foreign_key="clinicians.clinician_id", index=True
    )
    # False: the therapist is named (the contract) but not at the chair (esketamine, KAP-3).
    therapist_present: bool = True
    # The nurse monitoring the session, when known (SessionScheduled.nurse_id).
    nurse_id: str | None = Field(default=None, foreign_key="clinicians.clinician_id")
    status: str = Field(index=True, max_length=16)
    booked_by: str
    booked_at: datetime = Field(default_factory=utc_now)
    rescheduled_at: datetime | None = None
    checked_in_at: datetime | None = None
    checked_in_by: str | None = None
    # Attested at check-in (SPR-PRE-1/2/8, KET-PRE-1/3).
    last_food_at: datetime | None = None
    last_liquid_at: datetime | None = None
    transport_arranged: bool | None = None
    completed_at: datetime | None = None
    completed_by: str | None = None
    # SessionCompleted's event id: the cause of a later IntegrationOverdue.
    completed_event_id: str | None = Field(default=None, max_length=36)
    cancelled_at: datetime | None = None
    cancelled_by: str | None = None
    cancel_reason: str | None = Field(default=None, max_length=32)
    cancel_note: str | None = None  # free text: never leaves scheduling
    # From monitoring's DischargeCleared (SCH-DIS-1).
    discharge_cleared_at: datetime | None = None
    discharge_event_id: str | None = Field(default=None, max_length=36)


class Hold(ScopeColumns, SchedulingTable, table=True):
    """A safety hold on the patient's dosing (SafetyConcernRaised), until a prescriber
    clears it (SCH-HOLD-1)."""

    __tablename__ = "holds"

    hold_id: str = Field(primary_key=True, max_length=36)
    source: str
    value: float
    severity: str = Field(max_length=16)
    raised_at: datetime
    source_event_id: str = Field(unique=True, max_length=36)
    status: str = Field(index=True, max_length=16)
    cleared_by: str | None = None
    cleared_at: datetime | None = None
    clear_reason: str | None = None  # free text: never leaves scheduling


class IntegrationDeadline(ScopeColumns, SchedulingTable, table=True):
    """KAP-2: the integration session owed after a completed dosing session."""

    __tablename__ = "integration_deadlines"

    dosing_session_id: str = Field(
        primary_key=True, foreign_key="sessions.session_id", max_length=36
    )
    plan_id: str = Field(foreign_key="plans.plan_id", index=True)
    therapist_id: str = Field(max_length=64)
    due_by: datetime
    # open -> met | overdue -> met_late
    status: str = Field(index=True, max_length=16)
    met_by_session_id: str | None = Field(default=None, max_length=36)
    met_at: datetime | None = None
    overdue_at: datetime | None = None
