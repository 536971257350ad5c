"""Records' tables.

The *projection* (rebuilt from the topics by `kap-records rebuild`): timeline
entries (one per event, coded fields only), vitals readings (summarised per
session on read), and what records knows of plans and sessions.

Records' *own state* (kept by a rebuild): the REMS Patient Monitoring Forms with
the fields a clinician completed and their submission. Times are UTC.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlmodel import Field, SQLModel

from kap_shared.db import ScopeColumns, json_column, service_registry
from kap_shared.events.monitoring import READING_ID_MAX_LENGTH
from kap_shared.projections import BookedSessionColumns, PlanColumns

REGISTRY = service_registry()


class RecordsTable(SQLModel, registry=REGISTRY):
    """Base of records' tables: they live on records' own metadata."""


class Entry(RecordsTable, table=True):
    """One event about a patient, as the timeline shows it."""

    __tablename__ = "timeline_entries"

    event_id: str = Field(primary_key=True, max_length=36)
    patient_id: str = Field(index=True, max_length=64)
    site_id: str = Field(index=True, max_length=64)
    event_type: str = Field(index=True, max_length=64)
    topic: str = Field(max_length=100)
    occurred_at: datetime = Field(index=True)
    session_id: str | None = Field(default=None, index=True, max_length=64)
    correlation_id: str = Field(max_length=64)
    causation_id: str | None = Field(default=None, max_length=64)
    rule_ids: list[str] = json_column(list)
    summary: str
    # The event's data without free text (see domain.timeline.coded_data).
    data: dict[str, Any] = json_column(dict)


class Reading(ScopeColumns, RecordsTable, table=True):
    """One vitals reading (kap.monitoring.vitals.v1); the timeline summarises them.

    Filed once per `reading_id`, as monitoring counts it (MON-READING-1): a gateway that
    re-sends a reading under a new event id, or reuses its id in another session, adds
    no second row; the first one read from the partition stays."""

    __tablename__ = "vitals_readings"

    event_id: str = Field(primary_key=True, max_length=36)
    reading_id: str = Field(unique=True, index=True, max_length=READING_ID_MAX_LENGTH)
    session_id: str = Field(index=True, max_length=64)
    correlation_id: str = Field(max_length=64)
    recorded_at: datetime = Field(index=True)
    values: dict[str, Any] = json_column(dict)


class PlanFact(RecordsTable, PlanColumns, table=True):
    __tablename__ = "plans"

    therapist_id: str = Field(max_length=64)
    planned_dosing_sessions: int
    created_at: datetime


class SessionFact(RecordsTable, BookedSessionColumns, table=True):
    __tablename__ = "sessions"

    sequence: int
    room_id: str = Field(max_length=64)
    nurse_id: str | None = Field(default=None, max_length=64)
    status: str = Field(default="scheduled", max_length=16)


class PmfForm(RecordsTable, table=True):
    """A REMS Patient Monitoring Form (SPR-PMF-1): one per esketamine dosing session."""

    __tablename__ = "pmf_forms"

    pmf_id: str = Field(primary_key=True, max_length=36)
    session_id: str = Field(unique=True, max_length=64)
    patient_id: str = Field(index=True, max_length=64)
    site_id: str = Field(index=True, max_length=64)
    correlation_id: str = Field(max_length=64)
    opened_at: datetime
    session_at: datetime  # the first device's administration
    due_by: datetime = Field(index=True)
    # Fields no event carries, completed with PATCH /pmf/{id} (coded values only).
    completions: dict[str, Any] = json_column(dict)
    submitted_at: datetime | None = None
    submitted_by: str | None = Field(default=None, max_length=64)
    confirmation: str | None = Field(default=None, max_length=64)


PROJECTION = (Entry, Reading, PlanFact, SessionFact)
