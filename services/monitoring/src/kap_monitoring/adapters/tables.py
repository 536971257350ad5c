"""Monitoring's tables: baselines and sessions (kept current from events), doses,
readings, alerts, pre-dose decisions and outcome measures.

Everything here is keyed by pseudonymous ids; monitoring holds no names, dates of
birth or contacts (PHI stays in intake). Free-text notes (a prescriber's reason
in their own words) are stored here and never put in an event.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Column, Float, Index, Integer, Table, UniqueConstraint, text
from sqlmodel import AutoString, Field, SQLModel, UTCDateTime

from kap_shared.db import ScopeColumns, json_column, service_registry
from kap_shared.events.envelope import utc_now
from kap_shared.events.monitoring import READING_ID_MAX_LENGTH, VITAL_METRICS
from kap_shared.projections import PlanColumns

from ..domain.discharge import StabilityCriteria

REGISTRY = service_registry()


class MonitoringTable(SQLModel, registry=REGISTRY):
    """Base of monitoring's tables: they live on monitoring's own metadata."""


# Session status: scheduled -> checked_in (window open) -> discharged | cancelled.
SCHEDULED, CHECKED_IN, DISCHARGED, CANCELLED = "scheduled", "checked_in", "discharged", "cancelled"
# Alert status.
OPEN, RESOLVED = "open", "resolved"


class Baseline(MonitoringTable, table=True):
    """The latest screening baseline per patient: the reference for safety rules."""

    __tablename__ = "baselines"

    patient_id: str = Field(primary_key=True, max_length=64)
    site_id: str = Field(max_length=64)
    correlation_id: str = Field(default="", max_length=64)
    screening_id: str
    route: str
    phq9_total: int
    gad7_total: int
    pcl5_total: int | None = None
    bp_systolic: int
    bp_diastolic: int
    heart_rate: int
    updated_at: datetime = Field(default_factory=utc_now)


class Plan(PlanColumns, MonitoringTable, table=True):
    """A treatment plan as scheduling announced it (TreatmentPlanCreated): the route
    every dose of its sessions must follow (MON-DOSE-3)."""

    __tablename__ = "plans"

    created_at: datetime = Field(default_factory=utc_now)


class MonitoredSession(ScopeColumns, MonitoringTable, table=True):
    """A session scheduling booked; a checked-in dosing session is a monitoring window."""

    __tablename__ = "monitored_sessions"

    session_id: str = Field(primary_key=True, max_length=64)
    correlation_id: str = Field(default="", max_length=64)
    plan_id: str
    phase: str
    starts_at: datetime
    ends_at: datetime
    therapist_id: str
    prescriber_id: str | None = None
    status: str = SCHEDULED
    checked_in_at: datetime | None = None
    # Screening baseline copied when the window opens (KET-DIS-3 compares with it).
    baseline_bp_systolic: int | None = None
    baseline_bp_diastolic: int | None = None
    baseline_heart_rate: int | None = None
    # Dosing: one agent and route per session; the clocks discharge counts from.
    agent: str | None = None
    route: str | None = None
    first_dose_at: datetime | None = None
    dosing_end_at: datetime | None = None
    # SPR-PRE-5: an elevated pre-dose BP awaits a prescriber decision; the latest one.
    predose_decision_pending: bool = False
    predose_decision: str | None = None
    # SPR-MON-1: a BP reading landed in the 40-minute window.
    bp_check_done: bool = False
    discharged_at: datetime | None = None
    discharged_by: str | None = None
    # The clinician whose stability assessment signed the discharge.
    signed_by: str | None = Field(default=None, max_length=64)
    observed_minutes: float | None = None
    # The rules' memory per metric group (domain.vitals.VitalsState).
    rule_state: dict[str, Any] = Field(
        default_factory=dict, sa_column=Column(JSON, nullable=False, default=dict)
    )
    reading_count: int = 0
    # Bumped by every change: taking this row's lock serializes work on one session.
    version: int = 0
    updated_at: datetime = Field(default_factory=utc_now)


class Dose(MonitoringTable, table=True):
    __tablename__ = "doses"
    # SPR-ADM-1: each esketamine device once per session (NULLs never collide).
    __table_args__ = (UniqueConstraint("session_id", "device_number"),)

    dose_id: str = Field(primary_key=True, max_length=36)
    session_id: str = Field(foreign_key="monitored_sessions.session_id", index=True, max_length=64)
    agent: str = Field(max_length=16)
    route: str = Field(max_length=32)
    dose_mg: float
    device_number: int | None = None
    administered_at: datetime
    ends_at: datetime
    # When the dose was charted (administered_at may be earlier, within the window).
    charted_at: datetime | None = None
    # Where `ends_at` came from: "charted" or "default" (a per-route default duration).
    ends_at_source: str = Field(default="charted", max_length=16)
    # SPR-PRE-7 classes (first dose of an esketamine session), SPR-PRE-3 answer.
    concomitant_medications: list[str] | None = json_column(nullable=True)
    nasal_medication_used: bool | None = None
    nasal_medication_at: datetime | None = None
    recorded_by: str = Field(max_length=64)
    event_id: str = Field(max_length=36)
    created_at: datetime = Field(default_factory=utc_now)


# SpO2 is a percentage with decimals; the other metrics are whole numbers.
_DECIMAL_METRICS = frozenset({"spo2"})

# Every accepted reading, once: `reading_id` is the key that makes a repeated reading
# (device retry, or the topic echo of an HTTP reading) a no-op. A Core table: readings
# are written and read as rows (adapters.store), never as ORM entities, and its metric
# columns follow the contract's VITAL_METRICS instead of restating them.
readings_table = Table(
    "readings",
    REGISTRY.metadata,
    Column("reading_id", AutoString(READING_ID_MAX_LENGTH), primary_key=True),
    Column("session_id", AutoString(64), nullable=False),
    Column("recorded_at", UTCDateTime(), nullable=False),
    *(
        Column(metric, Float() if metric in _DECIMAL_METRICS else Integer(), nullable=True)
        for metric in VITAL_METRICS
    ),
    Column("symptoms", JSON, nullable=False),
    # SPR-GOAL: coded dissociation assessment and an optional CADSS total.
    Column("dissociation", AutoString(16), nullable=True),
    Column("cadss_total", Integer(), nullable=True),
    Column("source", AutoString(16), nullable=False),  # "http" or "device"
    Column("event_id", AutoString(36), nullable=True),
    Column("received_at", UTCDateTime(), nullable=False, default=utc_now),
    Index("ix_readings_session_recorded", "session_id", "recorded_at"),
)


class Alert(MonitoringTable, table=True):
    """A VitalsAlert. At most one open alert per rule and session (the partial
    unique index is the database's guarantee of "no storm of duplicates")."""

    __tablename__ = "alerts"
    __table_args__ = (
        Index(
            "uq_alerts_one_open_per_rule",
            "session_id",
            "rule_id",
            unique=True,
            sqlite_where=text("status = 'open'"),
            postgresql_where=text("status = 'open'"),
        ),
    )

    alert_id: str = Field(primary_key=True, max_length=36)
    session_id: str = Field(index=True, max_length=64)
    patient_id: str = Field(max_length=64)
    site_id: str = Field(max_length=64)
    rule_id: str = Field(max_length=32)
    severity: str = Field(max_length=16)
    metric: str = Field(max_length=32)
    value: float
    threshold: float
    message: str
    status: str = Field(default=OPEN, max_length=16)
    raised_at: datetime = Field(default_factory=utc_now)
    # The episode, in reading time: from the reading that met the condition to the
    # reading that was back in range (None while it lasts).
    triggered_at: datetime
    triggering_reading_id: str | None = Field(default=None, max_length=100)
    episode_end_at: datetime | None = None
    resolved_at: datetime | None = None
    resolved_by: str | None = Field(default=None, max_length=64)
    resolution: str | None = Field(default=None, max_length=64)
    resolution_note: str | None = None  # free text: never leaves monitoring
    event_id: str = Field(max_length=36)


class PredoseDecision(MonitoringTable, table=True):
    """SPR-PRE-5: a prescriber's documented proceed/defer on an elevated pre-dose BP."""

    __tablename__ = "predose_decisions"

    decision_id: str = Field(primary_key=True, max_length=36)
    session_id: str = Field(foreign_key="monitored_sessions.session_id", index=True, max_length=64)
    decision: str = Field(max_length=16)
    reason: str = Field(max_length=64)
    note: str | None = None  # free text: never leaves monitoring
    decided_by: str = Field(max_length=64)
    decided_at: datetime = Field(default_factory=utc_now)


class Measure(ScopeColumns, MonitoringTable, table=True):
    """An outcome measure (PHQ-9, GAD-7, PCL-5) with its scoring."""

    __tablename__ = "measures"

    measure_id: str = Field(primary_key=True, max_length=36)
    session_id: str | None = Field(default=None, max_length=64)
    instrument: str = Field(max_length=16)
    items: list[int | None] = json_column()
    total: int
    band: str = Field(max_length=32)
    baseline_total: int | None = None
    change_pct: float | None = None
    response: bool
    remission: bool
    # Rule ids of the follow-ups this result asks for (MBC-2, MBC-4, ...).
    follow_up: list[str] = json_column(list, nullable=True)
    recorded_by: str = Field(max_length=64)
    administered_at: datetime
    recorded_at: datetime = Field(default_factory=utc_now)
    event_id: str = Field(max_length=36)


class SafetyConcern(MonitoringTable, table=True):
    """A SafetyConcernRaised monitoring published (MBC-1). One raised during a session
    holds further doses of that session until a prescriber resolves it."""

    __tablename__ = "safety_concerns"

    concern_id: str = Field(primary_key=True, max_length=36)
    patient_id: str = Field(index=True, max_length=64)
    session_id: str | None = Field(default=None, index=True, max_length=64)
    rule_id: str = Field(max_length=32)
    source: str = Field(max_length=64)
    value: float
    severity: str = Field(max_length=16)
    status: str = Field(default=OPEN, max_length=16)
    raised_at: datetime = Field(default_factory=utc_now)
    resolved_at: datetime | None = None
    resolved_by: str | None = Field(default=None, max_length=64)
    resolution: str | None = Field(default=None, max_length=64)
    resolution_note: str | None = None  # free text: never leaves monitoring
    event_id: str = Field(max_length=36)


class StabilityAssessment(StabilityCriteria, MonitoringTable, table=True):
    """A clinician's documented assessment of clinical stability before discharge
    (SPR-MON-3, SPR-DIS-1/2/3, KET-DIS-1/4/5): coded fields only; the author signs the
    discharge. Only a role the site allows (default: prescriber) records one."""

    __tablename__ = "stability_assessments"

    assessment_id: str = Field(primary_key=True, max_length=36)
    session_id: str = Field(foreign_key="monitored_sessions.session_id", index=True, max_length=64)
    assessed_by: str = Field(max_length=64)
    role: str = Field(max_length=16)
    ready_to_leave_minutes: int | None = None
    assessed_at: datetime = Field(default_factory=utc_now)
