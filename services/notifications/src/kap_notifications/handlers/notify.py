"""Turn events into notifications, and escalate unacknowledged alerts.

Everything here runs inside one unit of work - the consumer's (with the inbox
claim of the event) or the timer worker's (with the timer's `fired` mark) - so
the notification rows, the escalation timers and the outgoing events
(NotificationSent for in-app rows, AlertEscalated) commit together or not at
all. A redelivered event or a re-run timer therefore adds nothing, and the
unique constraint on (source event, recipient, channel) backs that up.

External channels (email, SMS) are only *recorded* here, as `pending` rows;
the delivery worker sends them after commit.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

from sqlalchemy import bindparam
from sqlmodel.ext.asyncio.session import AsyncSession

from kap_shared.db import is_postgres
from kap_shared.events import (
    AlertEscalated,
    Envelope,
    SessionScheduled,
    new_id,
)
from kap_shared.events.enums import Channel, Phase
from kap_shared.events.envelope import envelope_fields, utc_now
from kap_shared.events.notifications import AlertEscalatedData
from kap_shared.logging import get_logger
from kap_shared.messaging import timers
from kap_shared.messaging.consumer import EventHandler
from kap_shared.messaging.unit_of_work import UnitOfWork
from kap_shared.rules import SiteRules

from ..adapters.hub import InboxHub
from ..adapters.metrics import NotificationMetrics
from ..adapters.tables import (
    DELIVERED,
    OPEN,
    PENDING,
    RESOLVED,
    Alert,
    EscalationPolicy,
    select,
)
from ..domain.delivery import plan
from ..domain.escalation import Level, due_at, levels_for, timer_key
from ..domain.routing import ROUTED_EVENTS, RULES, Message, escalation_text, route, rule_for
from ..domain.rules import NotificationRules
from . import inbox
from .inbox import NewNotification
from .outcomes import PRODUCER, notification_sent
from .views import profiles, routing_context, site_members, update_views

ESCALATION_TIMER = "escalation"
log = get_logger(__name__)


@dataclass(frozen=True)
class Source:
    """The event a notification answers (the routed event, or an AlertEscalated)."""

    event_id: str
    event_type: str
    site_id: str
    patient_id: str
    correlation_id: str


class Extension(Protocol):
    """Further rows handled in their own module (e.g. handoffs.Handoffs): its event
    handlers take precedence over on_event for the types they name."""

    def handlers(self) -> dict[type, EventHandler]: ...

    def timer_handlers(self) -> dict[str, timers.TimerHandler]: ...


@dataclass
class Notifier:
    rules: SiteRules[NotificationRules]
    hub: InboxHub
    wake_delivery: Callable[[], None] = lambda: None
    clock: Callable[[], datetime] = utc_now
    metrics: NotificationMetrics | None = field(default=None)
    extensions: list[Extension] = field(default_factory=list)

    def handlers(self) -> dict[type, EventHandler]:
        handlers: dict[type, EventHandler] = dict.fromkeys(ROUTED_EVENTS, self.on_event)
        for extension in self.extensions:
            handlers |= extension.handlers()
        return handlers

    def timer_handlers(self) -> dict[str, timers.TimerHandler]:
        handlers: dict[str, timers.TimerHandler] = {ESCALATION_TIMER: self.escalate}
        for extension in self.extensions:
            handlers |= extension.timer_handlers()
        return handlers

    # -- events ------------------------------------------------------------------------------

    async def on_event(self, event: Envelope, uow: UnitOfWork) -> None:
        await update_views(uow.session, event)
        if isinstance(event, SessionScheduled) and event.data.phase is Phase.INTEGRATION:
            await self._resolve_integration_alerts(uow.session, event.patient_id)
        rule = rule_for(event)
        if rule is None:
            return
        message = route(event, await routing_context(uow.session, event, rule))
        if message is None:
            return
        if not message.recipients:
            if message.escalation is None:
                log.warning("routing.no_recipient", rule=rule.key)
                return
            # Nobody to tell first: the alert still escalates through its levels.
            log.error("alert.no_first_recipient", rule=rule.key)
        now = self.clock()
        source = Source(
            str(event.event_id),
            event.event_type,
            event.site_id,
            event.patient_id,
            event.correlation_id,
        )
        alert_id = None
        if message.escalation is not None:
            alert_id = await self._open_alert(uow.session, source, message, now)
        await self.send(uow, source, message, now, alert_id=alert_id)

    async def send(
        self,
        uow: UnitOfWork,
        source: Source,
        message: Message,
        now: datetime,
        *,
        alert_id: str | None = None,
        level: int = 0,
    ) -> list[NewNotification]:
        """Record one notification per (recipient, channel) of `message`, in one statement.

        In-app rows are delivered by being stored, and announced with
        NotificationSent; email and SMS rows wait for the delivery worker."""
        deliveries, skipped = plan(message, await profiles(uow.session, message.recipients), now)
        for skip in skipped:
            log.info(
                "delivery.skipped",
                recipient_id=skip.recipient_id,
                channel=skip.channel.value,
                reason=skip.reason,
            )
        rows = []
        for delivery in deliveries:
            in_app = delivery.channel is Channel.IN_APP
            row = NewNotification(
                notification_id=new_id(),
                source_event_id=source.event_id,
                source_event_type=source.event_type,
                alert_id=alert_id,
                escalation_level=level,
                recipient_id=delivery.recipient_id,
                channel=delivery.channel.value,
                priority=delivery.priority.value,
                title=message.title,
                body=message.body,
                site_id=source.site_id,
                patient_id=source.patient_id,
                correlation_id=source.correlation_id,
                status=DELIVERED if in_app else PENDING,
                created_at=now,
                delivered_at=now if in_app else None,
                next_attempt_at=None if in_app else (delivery.not_before or now),
                attempts=0,
                last_error=None,
                acknowledged_at=None,
                acknowledged_by=None,
            )
            rows.append(row)
            if self.metrics:
                self.metrics.created.labels(row.channel, row.priority).inc()
            if in_app:
                uow.publish(notification_sent(row))
        await inbox.insert(uow.session, rows)
        live = [inbox.item(r) for r in rows if r.channel == Channel.IN_APP]
        if live:
            uow.after_commit(lambda: self.hub.publish(live))
        if any(r.status == PENDING for r in rows):
            uow.after_commit(self.wake_delivery)
        return rows

    # -- alerts and escalation -----------------------------------------------------------------

    async def _open_alert(
        self, session: AsyncSession, source: Source, message: Message, now: datetime
    ) -> str:
        assert message.escalation is not None
        # No look-up for an existing alert: the consumer's inbox claim in this transaction
        # lets each event through once, and the alert's primary key (its event id) backs it.
        # The policy read and the alert's row are plain statements, built once: nothing in
        # this transaction reads the alert back, and the ORM's identity map, flush and
        # statement building were most of an alert's Python (bench/alert_handler.py).
        connection = await session.connection()
        policy = await connection.execute(_POLICY_LEVELS, {"site_id": source.site_id})
        site_levels = [Level.from_json(raw) for raw in policy.scalar_one_or_none() or ()]
        levels = levels_for(message.escalation, site_levels, self.rules.for_site(source.site_id))
        await connection.execute(
            _INSERT_ALERT,
            {
                "alert_id": source.event_id,
                "event_type": source.event_type,
                "rule": message.rule.key,
                "site_id": source.site_id,
                "patient_id": source.patient_id,
                "correlation_id": source.correlation_id,
                "priority": message.priority.value,
                "title": message.title,
                "body": message.body,
                "levels": [level.to_json() for level in levels],
                "level": 0,
                "status": OPEN,
                "opened_at": now,
            },
        )
        if levels:
            await _schedule_level(session, source.event_id, 1, due_at(now, levels[0]))
        log.info("alert.opened", alert_id=source.event_id, levels=len(levels))
        return source.event_id

    async def escalate(self, job: timers.ScheduledJob, uow: UnitOfWork) -> None:
        """Timer: level `n` of an alert is due. Runs in the timer's unit of work."""
        alert_id, number = str(job.payload["alert_id"]), int(job.payload["level"])
        alert = await locked_alert(uow.session, alert_id)
        if alert is None or alert.status != OPEN or alert.level >= number:
            return  # acknowledged, resolved, or this level already fired
        levels = [Level.from_json(raw) for raw in alert.levels]
        if number > len(levels):
            return
        level = levels[number - 1]
        recipients = list(level.recipient_ids)
        for role in level.roles:
            recipients.extend(await site_members(uow.session, alert.site_id, role))
        recipients = list(dict.fromkeys(recipients))
        alert.level = number
        uow.session.add(alert)
        if number < len(levels):
            await _schedule_level(
                uow.session, alert_id, number + 1, due_at(alert.opened_at, levels[number])
            )
        if not recipients:
            log.warning("escalation.no_recipient", alert_id=alert_id, level=number)
            return
        escalated = AlertEscalated(
            **envelope_fields(alert, producer=PRODUCER, causation_id=alert_id),
            data=AlertEscalatedData(
                source_event_id=alert_id, level=number, to_recipient_ids=recipients
            ),
        )
        uow.publish(escalated)
        title, body = escalation_text(alert.title, alert.body, number, level.after_seconds)
        message = Message(RULES[alert.rule], tuple(recipients), title, body)
        source = Source(
            str(escalated.event_id),
            escalated.event_type,
            alert.site_id,
            alert.patient_id,
            alert.correlation_id,
        )
        await self.send(uow, source, message, self.clock(), alert_id=alert_id, level=number)
        if self.metrics:
            self.metrics.escalations.labels(str(number)).inc()
        log.info("alert.escalated", alert_id=alert_id, level=number, recipients=len(recipients))

    async def _resolve_integration_alerts(self, session: AsyncSession, patient_id: str) -> None:
        """An integration session got booked: the IntegrationOverdue alert is moot."""
        rows = await session.exec(
            select(Alert)
            .where(Alert.patient_id == patient_id)
            .where(Alert.event_type == "IntegrationOverdue")
            .where(Alert.status == OPEN)
        )
        for alert in rows:
            alert.status, alert.closed_at = RESOLVED, self.clock()
            session.add(alert)
            await cancel_escalation(session, alert)
            log.info("alert.resolved", alert_id=alert.alert_id)


_ALERTS = Alert.__table__  # type: ignore[attr-defined]
_INSERT_ALERT = _ALERTS.insert()
_POLICY_LEVELS = select(EscalationPolicy.levels).where(
    EscalationPolicy.site_id == bindparam("site_id")
)


async def _schedule_level(session: AsyncSession, alert_id: str, level: int, due: datetime) -> None:
    await timers.schedule(
        session,
        kind=ESCALATION_TIMER,
        key=timer_key(alert_id, level),
        due_at=due,
        payload={"alert_id": alert_id, "level": level},
    )


async def cancel_escalation(session: AsyncSession, alert: Alert) -> None:
    """Cancel every level not reached yet (part of the caller's transaction)."""
    for level in range(alert.level + 1, len(alert.levels) + 1):
        await timers.cancel(session, timer_key(alert.alert_id, level))


async def locked_alert(session: AsyncSession, alert_id: str) -> Alert | None:
    """The alert, row-locked on PostgreSQL so an acknowledgement and an
    escalation of the same alert serialize (SQLite serializes all writers)."""
    query = select(Alert).where(Alert.alert_id == alert_id)
    if is_postgres(session):
        query = query.with_for_update()
    return (await session.exec(query)).first()
