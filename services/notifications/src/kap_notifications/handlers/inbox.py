"""The inbox: a clinician's notifications as the API shows them (no contact details)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

from pydantic import BaseModel, ConfigDict
from sqlalchemy import and_, or_
from sqlmodel import col
from sqlmodel.ext.asyncio.session import AsyncSession
from sqlmodel.sql.expression import SelectOfScalar

from kap_shared.auth import Principal

from ..adapters.hub import InboxItem
from ..adapters.tables import Notification, select


class NotificationView(BaseModel):
    notification_id: str
    source_event_id: str
    source_event_type: str
    alert_id: str | None
    escalation_level: int
    recipient_id: str
    channel: str
    priority: str
    title: str
    body: str
    site_id: str
    patient_id: str
    status: str
    attempts: int
    next_attempt_at: datetime | None
    last_error: str | None
    created_at: datetime
    delivered_at: datetime | None
    acknowledged_at: datetime | None
    acknowledged_by: str | None


class NewNotification(NotificationView):
    """A notification as the notifier writes it: what the inbox shows, plus the columns
    it does not. The notifier inserts an event's rows with one statement (`insert`):
    building mapped `Notification` objects and flushing them cost more Python than the
    database spent on the rows (bench/README.md, round 12). A test holds its fields
    equal to the table's columns."""

    model_config = ConfigDict(frozen=True)

    correlation_id: str
    lease_until: datetime | None = None


# What reads a notification's facts (an inbox item, NotificationSent) takes either kind.
AnyNotification = Notification | NewNotification

_INSERT = Notification.__table__.insert()  # type: ignore[attr-defined]


async def insert(session: AsyncSession, rows: Sequence[NewNotification]) -> None:
    """Write `rows` in the session's transaction, after what it has pending."""
    if rows:
        await session.exec(_INSERT, params=[row.model_dump() for row in rows])


def view(notification: AnyNotification) -> NotificationView:
    """The inbox's fields only: a `NewNotification` is a view too, and validating it as
    one would hand it back whole, with the columns the inbox does not show."""
    return NotificationView.model_validate(
        {name: getattr(notification, name) for name in NotificationView.model_fields}
    )


def item(notification: AnyNotification) -> InboxItem:
    return InboxItem(
        notification_id=notification.notification_id,
        recipient_id=notification.recipient_id,
        site_id=notification.site_id,
        payload=view(notification).model_dump(mode="json"),
    )


def _visible(
    query: SelectOfScalar[Notification], principal: Principal
) -> SelectOfScalar[Notification]:
    query = query.where(Notification.recipient_id == principal.sub)
    if not principal.all_sites:
        # Filter by site before the limit, so other sites' rows never use up the page.
        query = query.where(col(Notification.site_id).in_(principal.sites))
    return query


async def inbox(
    session: AsyncSession,
    principal: Principal,
    *,
    channels: Sequence[str],
    limit: int,
    acknowledged: bool | None = None,
) -> list[Notification]:
    query = _visible(select(Notification), principal).where(
        col(Notification.channel).in_(list(channels))
    )
    if acknowledged is not None:
        ack = col(Notification.acknowledged_at)
        query = query.where(ack.is_not(None) if acknowledged else ack.is_(None))
    rows = await session.exec(
        query.order_by(
            col(Notification.created_at).desc(), col(Notification.notification_id).desc()
        ).limit(limit)
    )
    return list(rows)


# With several instances a stream receives other instances' notifications a little
# later than its own, so arrival order is not creation order: the replay also covers
# this much before the last received one (the client drops ids it already has).
REPLAY_LOOKBACK = timedelta(seconds=10)


async def created_after(
    session: AsyncSession, principal: Principal, last_event_id: str, limit: int = 500
) -> list[Notification]:
    """The caller's in-app notifications newer than `last_event_id` (SSE replay), oldest
    first; including those created up to REPLAY_LOOKBACK before it (may repeat some)."""
    last = await session.get(Notification, last_event_id)
    if last is None or last.recipient_id != principal.sub:
        return []
    query = _visible(select(Notification), principal).where(Notification.channel == "in_app")
    query = query.where(
        or_(
            col(Notification.created_at) > last.created_at,
            and_(
                col(Notification.created_at) == last.created_at,
                col(Notification.notification_id) > last.notification_id,
            ),
            and_(
                col(Notification.created_at) > last.created_at - REPLAY_LOOKBACK,
                col(Notification.created_at) < last.created_at,
            ),
        )
    )
    rows = await session.exec(
        query.order_by(col(Notification.created_at), col(Notification.notification_id)).limit(limit)
    )
    return list(rows)
