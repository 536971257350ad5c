"""Live inbox across replicas: in-app notifications created by ANY instance reach the
streams connected to THIS one.

Every in-app notification is announced with NotificationSent (written in the same
transaction as the row). Each instance reads `kap.notifications.events.v1` in a
consumer group of its own (`kap_shared.messaging.live`), loads the row from the
shared database and offers it to its hub. The creating instance has already
offered it after its commit (lowest latency), so there the echo is skipped before
any database read (a stream that connected in between still gets it); the stream
sends each notification id once anyway.
"""

from __future__ import annotations

from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel.ext.asyncio.session import AsyncSession

from kap_shared.events import NotificationSent
from kap_shared.events.enums import Channel
from kap_shared.messaging.live import LiveHandler

from ..adapters.hub import InboxHub
from ..adapters.tables import Notification
from . import inbox


def live_handlers(
    sessions: async_sessionmaker[AsyncSession], hub: InboxHub
) -> dict[type, LiveHandler]:
    async def on_sent(event: NotificationSent) -> None:
        data = event.data
        if data.channel is not Channel.IN_APP or not hub.wants(
            data.recipient_id, data.notification_id
        ):
            return  # nobody here is listening, or every stream has it: no database read
        async with sessions() as session:
            row = await session.get(Notification, data.notification_id)
        if row is not None:
            hub.publish([inbox.item(row)])

    return {NotificationSent: on_sent}
