"""Notifications' tables."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import UniqueConstraint
from sqlmodel import Field, SQLModel, select

from kap_shared.db import service_registry
from kap_shared.events.envelope import utc_now

REGISTRY = service_registry()


class NotificationsTable(SQLModel, registry=REGISTRY):
    """Base of notifications's tables: they live on notifications's own metadata."""


__all__ = ["REGISTRY", "Notification", "select"]


class Notification(NotificationsTable, table=True):
    __tablename__ = "notifications"
    # Exactly one notification per (source event, recipient, channel).
    __table_args__ = (UniqueConstraint("source_event_id", "recipient_id", "channel"),)

    notification_id: str = Field(primary_key=True, max_length=36)
    source_event_id: str = Field(max_length=36, index=True)
    source_event_type: str
    recipient_id: str = Field(index=True, max_length=64)
    channel: str
    priority: str
    title: str
    body: str
    site_id: str = Field(max_length=64)
    patient_id: str = Field(max_length=64)
    status: str = "delivered"
    created_at: datetime = Field(default_factory=utc_now, index=True)
    acknowledged_at: datetime | None = None
