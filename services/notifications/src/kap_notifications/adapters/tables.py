"""Notifications' tables (on notifications' own metadata).

Contact details (recipients.email, recipients.phone) live only here: they
never appear in events, in log lines, in error texts or in the inbox.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Index, UniqueConstraint
from sqlmodel import Field, SQLModel, select

from kap_shared.db import json_column, service_registry
from kap_shared.events.envelope import utc_now
from kap_shared.projections import BookedSessionColumns

REGISTRY = service_registry()


class NotificationsTable(SQLModel, registry=REGISTRY):
    """Base of notifications's tables: they live on notifications's own metadata."""


__all__ = [
    "REGISTRY",
    "Alert",
    "CareTeam",
    "DigestItem",
    "EscalationPolicy",
    "IntegrationWindow",
    "MeasureSchedule",
    "Notification",
    "PatientProgress",
    "Recipient",
    "RecipientSite",
    "SessionTeam",
    "select",
]

# Notification.status
PENDING, DELIVERED, FAILED = "pending", "delivered", "failed"
# Alert.status
OPEN, ACKNOWLEDGED, RESOLVED = "open", "acknowledged", "resolved"


class Notification(NotificationsTable, table=True):
    """One message to one recipient on one channel.

    In-app rows are delivered by being stored (the inbox). Email and SMS rows
    are written `pending` in the same transaction as the event that caused
    them, and the delivery worker sends them afterwards; `attempts`,
    `next_attempt_at` and `lease_until` make that a durable, bounded retry queue.
    """

    __tablename__ = "notifications"
    # Exactly one notification per (source event, recipient, channel).
    __table_args__ = (
        UniqueConstraint("source_event_id", "recipient_id", "channel"),
        Index("ix_notifications_inbox", "recipient_id", "channel", "created_at"),
        Index("ix_notifications_due", "status", "channel", "next_attempt_at"),
    )

    notification_id: str = Field(primary_key=True, max_length=36)
    source_event_id: str = Field(max_length=36, index=True)
    source_event_type: str = Field(max_length=64)
    # The alert this belongs to (the event that raised it), for acknowledgement.
    alert_id: str | None = Field(default=None, max_length=36, index=True)
    escalation_level: int = 0
    recipient_id: str = Field(max_length=64)
    channel: str = Field(max_length=16)
    priority: str = Field(max_length=16)
    title: str
    body: str
    site_id: str = Field(max_length=64)
    patient_id: str = Field(max_length=64)
    correlation_id: str = Field(default="", max_length=128)
    status: str = Field(default=DELIVERED, max_length=16)
    attempts: int = 0
    next_attempt_at: datetime | None = None
    lease_until: datetime | None = None
    last_error: str | None = Field(default=None, max_length=200)
    created_at: datetime = Field(default_factory=utc_now, index=True)
    delivered_at: datetime | None = None
    acknowledged_at: datetime | None = None
    acknowledged_by: str | None = Field(default=None, max_length=64)


class Recipient(NotificationsTable, table=True):
    """A clinician's contact points, channel preferences and quiet hours, plus the
    role and sites copied from the clinic directory (scheduling owns it)."""

    __tablename__ = "recipients"

    clinician_id: str = Field(primary_key=True, max_length=64)
    role: str = Field(max_length=16)
    email: str | None = Field(default=None, max_length=320)
    phone: str | None = Field(default=None, max_length=20)
    channels: dict[str, list[str]] = json_column(dict)
    quiet_start: str | None = Field(default=None, max_length=5)
    quiet_end: str | None = Field(default=None, max_length=5)
    quiet_timezone: str | None = Field(default=None, max_length=64)
    updated_by: str = Field(max_length=64)
    updated_at: datetime = Field(default_factory=utc_now)


class RecipientSite(NotificationsTable, table=True):
    __tablename__ = "recipient_sites"

    clinician_id: str = Field(
        primary_key=True, max_length=64, foreign_key="recipients.clinician_id"
    )
    site_id: str = Field(primary_key=True, max_length=64, index=True)


class CareTeam(NotificationsTable, table=True):
    """The patient's plan team, from TreatmentPlanCreated."""

    __tablename__ = "care_teams"

    patient_id: str = Field(primary_key=True, max_length=64)
    site_id: str = Field(max_length=64, index=True)
    plan_id: str = Field(max_length=64)
    prescriber_id: str = Field(max_length=64)
    therapist_id: str = Field(max_length=64)
    updated_at: datetime = Field(default_factory=utc_now)


class SessionTeam(NotificationsTable, BookedSessionColumns, table=True):
    """A session's team and room, from SessionScheduled (kept up to date by
    SessionRescheduled and SessionCancelled)."""

    __tablename__ = "session_teams"

    room_id: str = Field(max_length=64)
    status: str = Field(default="scheduled", max_length=16)
    updated_at: datetime = Field(default_factory=utc_now)


class EscalationPolicy(NotificationsTable, table=True):
    """A site's escalation levels: [{after_seconds, recipient_ids[]}]."""

    __tablename__ = "escalation_policies"

    site_id: str = Field(primary_key=True, max_length=64)
    levels: list[dict[str, Any]] = json_column(list)
    updated_by: str = Field(max_length=64)
    updated_at: datetime = Field(default_factory=utc_now)


class Alert(NotificationsTable, table=True):
    """A notified event that escalates until acknowledged (id = the event's id)."""

    __tablename__ = "alerts"

    alert_id: str = Field(primary_key=True, max_length=36)
    event_type: str = Field(max_length=64)
    rule: str = Field(max_length=64)  # the routing-table row (channels of escalations)
    site_id: str = Field(max_length=64)
    patient_id: str = Field(max_length=64, index=True)
    correlation_id: str = Field(max_length=128)
    priority: str = Field(max_length=16)
    title: str
    body: str
    # Snapshot of the levels in force when the alert was raised.
    levels: list[dict[str, Any]] = json_column(list)
    level: int = 0  # the highest level reached
    status: str = Field(default=OPEN, max_length=16, index=True)
    opened_at: datetime = Field(default_factory=utc_now)
    acknowledged_by: str | None = Field(default=None, max_length=64)
    acknowledged_at: datetime | None = None
    acknowledged_notification_id: str | None = Field(default=None, max_length=36)
    closed_at: datetime | None = None


# -- handoffs across phases (issue 11) ----------------------------------------------------------

# IntegrationWindow.status
SETTLED = "settled"


class IntegrationWindow(NotificationsTable, table=True):
    """KAP-2: the integration session owed after a dosing session, as the therapist
    is told about it (opened by SessionCompleted or DischargeCleared, whichever
    arrives first; settled by booking the patient's integration session)."""

    __tablename__ = "integration_windows"

    dosing_session_id: str = Field(primary_key=True, max_length=64)
    patient_id: str = Field(max_length=64, index=True)
    site_id: str = Field(max_length=64)
    correlation_id: str = Field(max_length=128)
    therapist_id: str | None = Field(default=None, max_length=64)
    opened_at: datetime
    due_by: datetime | None = None
    notified_at: datetime | None = None
    status: str = Field(default=OPEN, max_length=16, index=True)


class PatientProgress(NotificationsTable, table=True):
    """What the outcome handoffs remember per patient: the last total per instrument
    (MBC-2/MBC-4 compare with it), response/remission already told (MBC-3), and the
    end-of-induction review (SPR-SCH-1)."""

    __tablename__ = "patient_progress"

    patient_id: str = Field(primary_key=True, max_length=64)
    last_totals: dict[str, float] = json_column(dict)
    # The latest PHQ-9 outcome: {total, baseline_total, change_pct, response, remission}.
    latest_phq9: dict[str, Any] | None = json_column(nullable=True)
    response_told: bool = False
    remission_told: bool = False
    induction_review_at: datetime | None = None
    no_response_told: bool = False
    updated_at: datetime = Field(default_factory=utc_now)


class DigestItem(NotificationsTable, table=True):
    """A routine handoff waiting for its recipient's next digest (in-app and email)."""

    __tablename__ = "digest_items"
    __table_args__ = (Index("ix_digest_items_open", "site_id", "digested_at"),)

    notification_id: str = Field(primary_key=True, max_length=36)
    recipient_id: str = Field(max_length=64)
    site_id: str = Field(max_length=64)
    patient_id: str = Field(max_length=64)
    rule: str = Field(max_length=64)
    created_at: datetime = Field(default_factory=utc_now)
    digested_at: datetime | None = None


class MeasureSchedule(NotificationsTable, table=True):
    """When the patient's next PHQ-9 / GAD-7 / PCL-5 is due (rulebook 3.2): reset by
    each treatment session and by each measure of that instrument."""

    __tablename__ = "measure_schedules"

    patient_id: str = Field(primary_key=True, max_length=64)
    instrument: str = Field(primary_key=True, max_length=16)
    site_id: str = Field(max_length=64)
    correlation_id: str = Field(max_length=128)
    due_at: datetime
    reset_at: datetime
