"""In-process publish/subscribe for the live inbox (GET /inbox/stream).

Whatever part of the process creates in-app notifications (the event
consumer, the escalation timers) hands them to the hub **after its
transaction commits** (`UnitOfWork.after_commit`), so a stream never shows a
notification that was rolled back. Each connected stream has a bounded
queue; a client too slow to keep up is disconnected (its queue would grow
without bound) and reconnects with `Last-Event-ID` to replay what it missed.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from dataclasses import dataclass
from typing import Any

from kap_shared.http.streams import Closed as Closed  # re-exported for the stream's readers
from kap_shared.http.streams import StreamQueue
from kap_shared.logging import get_logger

log = get_logger(__name__)


@dataclass(frozen=True)
class InboxItem:
    notification_id: str
    recipient_id: str
    site_id: str
    payload: dict[str, Any]


class Subscription(StreamQueue[InboxItem]):
    """One stream of a recipient's inbox."""

    def __init__(self, hub: InboxHub, recipient_id: str, size: int) -> None:
        super().__init__(size)
        self.hub = hub
        self.recipient_id = recipient_id
        # What this stream was given, so the live consumer's echo of it is not read again.
        self.offered: set[str] = set()

    def offer(self, item: InboxItem) -> bool:
        queued = super().offer(item)
        if queued:
            self.offered.add(item.notification_id)
        return queued


class InboxHub:
    def __init__(self, queue_size: int = 256) -> None:
        self._queue_size = queue_size
        self._subscriptions: dict[str, set[Subscription]] = defaultdict(set)
        self._loop: asyncio.AbstractEventLoop | None = None
        self.closed = False

    @property
    def subscriber_count(self) -> int:
        return sum(len(subs) for subs in self._subscriptions.values())

    def wants(self, recipient_id: str, notification_id: str) -> bool:
        """Whether a stream of `recipient_id` connected here has not been given this
        notification yet (the live consumer then loads it; else it skips the read)."""
        return any(
            notification_id not in subscription.offered
            for subscription in self._subscriptions.get(recipient_id, ())
        )

    def subscribe(self, recipient_id: str) -> Subscription:
        self._loop = asyncio.get_running_loop()
        subscription = Subscription(self, recipient_id, self._queue_size)
        if self.closed:
            subscription.close("shutting_down")
        else:
            self._subscriptions[recipient_id].add(subscription)
        return subscription

    def unsubscribe(self, subscription: Subscription) -> None:
        subs = self._subscriptions.get(subscription.recipient_id)
        if subs is not None:
            subs.discard(subscription)
            if not subs:
                del self._subscriptions[subscription.recipient_id]

    def publish(self, items: list[InboxItem]) -> None:
        for item in items:
            for subscription in list(self._subscriptions.get(item.recipient_id, ())):
                subscription.offer(item)
                if subscription.closed:
                    self.unsubscribe(subscription)

    def close(self) -> None:
        """End every stream (shutdown): clients reconnect to another instance."""
        self.closed = True
        for subs in list(self._subscriptions.values()):
            for subscription in list(subs):
                subscription.close("shutting_down")
        self._subscriptions.clear()

    def close_threadsafe(self) -> None:
        """`close` from a signal handler or another thread."""
        loop = self._loop
        if loop is not None and not loop.is_closed():
            loop.call_soon_threadsafe(self.close)
        else:
            self.closed = True
