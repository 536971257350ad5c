"""The events notifications publishes about one of its notifications (CONTRACT
section 3): NotificationSent, NotificationFailed and AlertAcknowledged. Each answers an
earlier event - the notification's source, or for an acknowledgement the alert the
notification reported - so all three are built the same way, here."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from kap_shared.events import AlertAcknowledged, NotificationFailed, NotificationSent
from kap_shared.events.enums import Channel
from kap_shared.events.envelope import envelope_fields
from kap_shared.events.notifications import (
    AlertAcknowledgedData,
    NotificationFailedData,
    NotificationSentData,
)

from ..adapters.tables import Notification
from .inbox import AnyNotification

PRODUCER = "notifications"


def answering(row: AnyNotification, source_event_id: str) -> dict[str, Any]:
    """The envelope fields of an event about `row` caused by `source_event_id`, which
    also names the episode when the notification recorded no correlation id."""
    return envelope_fields(
        row,
        producer=PRODUCER,
        causation_id=source_event_id,
        correlation_fallback=source_event_id,
    )


def _delivery(row: AnyNotification) -> dict[str, Any]:
    """What NotificationSent and NotificationFailed both say about the notification."""
    return {
        "notification_id": row.notification_id,
        "source_event_id": row.source_event_id,
        "recipient_id": row.recipient_id,
        "channel": Channel(row.channel),
    }


def notification_sent(row: AnyNotification) -> NotificationSent:
    return NotificationSent(
        **answering(row, row.source_event_id),
        data=NotificationSentData(**_delivery(row), priority=row.priority),
    )


def notification_failed(row: Notification, error: str) -> NotificationFailed:
    return NotificationFailed(
        **answering(row, row.source_event_id),
        data=NotificationFailedData(**_delivery(row), error=error),
    )


def alert_acknowledged(
    row: Notification, source_event_id: str, by: str, at: datetime
) -> AlertAcknowledged:
    return AlertAcknowledged(
        **answering(row, source_event_id),
        data=AlertAcknowledgedData(
            notification_id=row.notification_id,
            source_event_id=source_event_id,
            acknowledged_by=by,
            acknowledged_at=at,
        ),
    )
