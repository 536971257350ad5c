"""Idempotent consumer: a processed `event_id` is recorded in the same
transaction as the handler's effects, so a redelivered event has no second
effect (the eventuate-tram pattern)."""

from __future__ import annotations

from datetime import datetime

from sqlmodel import Field
from sqlmodel.ext.asyncio.session import AsyncSession

from ..db import PlatformTable
from ..events.envelope import utc_now
from .upserts import PerDialect, bound, insert_on_conflict


class InboxMessage(PlatformTable, table=True):
    __tablename__ = "inbox_messages"

    consumer_group: str = Field(primary_key=True, max_length=128)
    event_id: str = Field(primary_key=True, max_length=36)
    event_type: str = Field(max_length=64)
    processed_at: datetime = Field(default_factory=utc_now)


_TABLE = InboxMessage.__table__  # type: ignore[attr-defined]


_CLAIM = PerDialect(
    lambda session: (
        insert_on_conflict(session, _TABLE)
        .values(**bound(_TABLE, "consumer_group", "event_id", "event_type", "processed_at"))
        .on_conflict_do_nothing()
    )
)


async def claim(session: AsyncSession, consumer_group: str, event_id: str, event_type: str) -> bool:
    """Record the event as processed; False when it already was.

    Runs inside the handler's transaction: if the handler fails, the claim
    rolls back with it and the redelivery is processed again.
    """
    values = {
        "consumer_group": consumer_group,
        "event_id": event_id,
        "event_type": event_type,
        "processed_at": utc_now(),
    }
    result = await session.exec(_CLAIM.of(session), params=values)  # type: ignore[call-overload]
    return bool(result.rowcount)
