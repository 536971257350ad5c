"""Events notifications publishes on `kap.notifications.events.v1`."""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import AwareDatetime, Field

from .enums import Channel
from .envelope import Envelope, Payload
from .topics import NOTIFICATIONS_EVENTS


class NotificationSentData(Payload):
    notification_id: str
    source_event_id: str
    recipient_id: str
    channel: Channel
    priority: str


class NotificationFailedData(Payload):
    notification_id: str
    source_event_id: str
    recipient_id: str
    channel: Channel
    error: str


class AlertAcknowledgedData(Payload):
    notification_id: str
    source_event_id: str
    acknowledged_by: str
    acknowledged_at: AwareDatetime


class AlertEscalatedData(Payload):
    source_event_id: str
    level: int = Field(ge=1)
    to_recipient_ids: list[str] = Field(min_length=1)


class NotificationSent(Envelope):
    topic: ClassVar[str] = NOTIFICATIONS_EVENTS
    event_type: Literal["NotificationSent"] = "NotificationSent"
    data: NotificationSentData


class NotificationFailed(Envelope):
    topic: ClassVar[str] = NOTIFICATIONS_EVENTS
    event_type: Literal["NotificationFailed"] = "NotificationFailed"
    data: NotificationFailedData


class AlertAcknowledged(Envelope):
    topic: ClassVar[str] = NOTIFICATIONS_EVENTS
    event_type: Literal["AlertAcknowledged"] = "AlertAcknowledged"
    data: AlertAcknowledgedData


class AlertEscalated(Envelope):
    topic: ClassVar[str] = NOTIFICATIONS_EVENTS
    event_type: Literal["AlertEscalated"] = "AlertEscalated"
    data: AlertEscalatedData
