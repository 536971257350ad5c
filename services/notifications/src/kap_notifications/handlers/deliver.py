"""Turn an event into notifications, one per (event, recipient, channel).

In-app delivery is the stored row itself; each one emits NotificationSent.
The inbox guard (consumer) and the unique constraint make a redelivered
event produce no second notification.
"""

from __future__ import annotations

from kap_shared.events import Envelope, NotificationSent, new_id
from kap_shared.events.notifications import NotificationSentData
from kap_shared.messaging.unit_of_work import UnitOfWork

from ..adapters.tables import Notification
from ..domain.routing import route

PRODUCER = "notifications"


async def notify(event: Envelope, uow: UnitOfWork) -> None:
    for delivery in route(event):
        notification = Notification(
            notification_id=new_id(),
            source_event_id=str(event.event_id),
            source_event_type=event.event_type,
            recipient_id=delivery.recipient_id,
            channel=delivery.channel.value,
            priority=delivery.priority.value,
            title=delivery.title,
            body=delivery.body,
            site_id=event.site_id,
            patient_id=event.patient_id,
        )
        uow.session.add(notification)
        uow.publish(
            NotificationSent.caused_by(
                event,
                producer=PRODUCER,
                data=NotificationSentData(
                    notification_id=notification.notification_id,
                    source_event_id=str(event.event_id),
                    recipient_id=delivery.recipient_id,
                    channel=delivery.channel,
                    priority=delivery.priority.value,
                ),
            )
        )
