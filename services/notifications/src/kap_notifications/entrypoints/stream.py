"""Events notifications reacts to (its consumer group is `notifications`), its
durable timers (escalation levels), and what each instance reads for its own live
streams (group `notifications-live-<instance>`)."""

from __future__ import annotations

from kap_shared.messaging.consumer import EventHandler
from kap_shared.messaging.timers import TimerHandler

from ..handlers.live import live_handlers
from ..handlers.notify import Notifier

__all__ = ["event_handlers", "live_handlers", "timer_handlers"]


def event_handlers(notifier: Notifier) -> dict[type, EventHandler]:
    """Event type -> handler: every consumed event goes through the routing table."""
    return notifier.handlers()


def timer_handlers(notifier: Notifier) -> dict[str, TimerHandler]:
    """Timer kind -> handler."""
    return notifier.timer_handlers()
