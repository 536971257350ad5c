"""Scheduling's tables: the clinic network directory and treatment plans."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import JSON, Column, UniqueConstraint
from sqlmodel import Field, SQLModel, select

from kap_shared.db import service_registry
from kap_shared.events.envelope import utc_now

REGISTRY = service_registry()


class SchedulingTable(SQLModel, registry=REGISTRY):
    """Base of scheduling's tables: they live on scheduling's own metadata."""


__all__ = ["REGISTRY", "Clinician", "Plan", "Room", "Site", "select"]


class Site(SchedulingTable, table=True):
    __tablename__ = "sites"

    site_id: str = Field(primary_key=True, max_length=64)
    name: str
    timezone: str = "UTC"
    # Spravato REMS certification of the setting (SPR-CERT-1); None = not certified.
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
    sites: list[str] = Field(sa_column=Column(JSON, nullable=False))
    # {"mon": ["08:00", "17:00"], ...} in the site's local time.
    working_hours: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON))


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
    # awaiting_care_team -> active -> (suspended | completed)
    status: str = Field(index=True)
    phase: str | None = None
    prescriber_id: str | None = Field(default=None, index=True)
    therapist_id: str | None = Field(default=None, index=True)
    baseline: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON))
    source_event_id: str
    created_at: datetime = Field(default_factory=utc_now)
