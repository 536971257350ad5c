"""Monitoring's tables: what it knows of patients' baselines and sessions."""

from __future__ import annotations

from datetime import datetime

from sqlmodel import Field, SQLModel, select

from kap_shared.db import service_registry
from kap_shared.events.envelope import utc_now

REGISTRY = service_registry()


class MonitoringTable(SQLModel, registry=REGISTRY):
    """Base of monitoring's tables: they live on monitoring's own metadata."""


__all__ = ["REGISTRY", "Baseline", "MonitoredSession", "select"]


class Baseline(MonitoringTable, table=True):
    """The latest screening baseline per patient: the reference for safety rules."""

    __tablename__ = "baselines"

    patient_id: str = Field(primary_key=True, max_length=64)
    site_id: str = Field(max_length=64)
    screening_id: str
    route: str
    phq9_total: int
    gad7_total: int
    pcl5_total: int | None = None
    bp_systolic: int
    bp_diastolic: int
    heart_rate: int
    updated_at: datetime = Field(default_factory=utc_now)


class MonitoredSession(MonitoringTable, table=True):
    """A session scheduling booked; dosing sessions open a monitoring window."""

    __tablename__ = "monitored_sessions"

    session_id: str = Field(primary_key=True, max_length=64)
    patient_id: str = Field(index=True, max_length=64)
    site_id: str = Field(max_length=64)
    plan_id: str
    phase: str
    starts_at: datetime
    ends_at: datetime
    therapist_id: str
    prescriber_id: str | None = None
    status: str = "scheduled"  # scheduled -> checked_in -> (cleared | cancelled)
    checked_in_at: datetime | None = None
