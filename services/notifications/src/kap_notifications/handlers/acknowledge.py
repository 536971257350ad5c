"""POST /notifications/{id}/ack: a clinician takes ownership of what a
notification reported.

Who may acknowledge (documented rule): the notification's recipient, or any
clinician (prescriber, therapist, nurse, coordinator, admin; never a device)
working at the notification's site - a colleague at the bedside may answer a
critical alert paged to the prescriber. The first acknowledgement of an
alert's notification acknowledges the alert and cancels its remaining
escalation levels, in the same transaction as AlertAcknowledged. Acknowledging
the same notification again changes nothing and emits nothing.
"""

from __future__ import annotations

from datetime import datetime

from kap_shared.auth import Principal
from kap_shared.events.enums import Role
from kap_shared.http.errors import ApiError, NotFound
from kap_shared.logging import get_logger
from kap_shared.messaging.unit_of_work import UnitOfWork

from ..adapters.tables import ACKNOWLEDGED, OPEN, Notification
from .notify import cancel_escalation, locked_alert
from .outcomes import alert_acknowledged

log = get_logger(__name__)

CLINICAL_ROLES = frozenset(
    {Role.PRESCRIBER, Role.THERAPIST, Role.NURSE, Role.COORDINATOR, Role.ADMIN}
)


def may_acknowledge(principal: Principal, notification: Notification) -> bool:
    if principal.role not in CLINICAL_ROLES:
        return False
    return principal.sub == notification.recipient_id or principal.can_access_site(
        notification.site_id
    )


async def acknowledge(
    uow: UnitOfWork, notification_id: str, principal: Principal, now: datetime
) -> tuple[Notification, bool]:
    """The acknowledged notification, and whether this call acknowledged it."""
    notification = await uow.session.get(Notification, notification_id)
    if notification is None:
        raise NotFound("notification", notification_id)
    if not may_acknowledge(principal, notification):
        raise ApiError(
            403,
            "forbidden",
            "only the recipient or a clinician of the notification's site may acknowledge it",
        )
    if notification.acknowledged_at is not None:
        return notification, False
    notification.acknowledged_at, notification.acknowledged_by = now, principal.sub
    uow.session.add(notification)
    source_event_id = notification.alert_id or notification.source_event_id
    if notification.alert_id is not None:
        alert = await locked_alert(uow.session, notification.alert_id)
        if alert is not None and alert.status == OPEN:
            alert.status = ACKNOWLEDGED
            alert.acknowledged_by, alert.acknowledged_at = principal.sub, now
            alert.acknowledged_notification_id = notification_id
            alert.closed_at = now
            uow.session.add(alert)
            await cancel_escalation(uow.session, alert)
            log.info("alert.acknowledged", alert_id=alert.alert_id, level=alert.level)
    uow.publish(alert_acknowledged(notification, source_event_id, principal.sub, now))
    await uow.commit()
    return notification, True
