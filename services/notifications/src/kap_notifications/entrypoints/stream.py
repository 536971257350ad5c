"""Events notifications reacts to (its consumer group is `notifications`), and
its durable timers (escalation levels)."""

from __future__ import annotations

from kap_shared.messaging.consumer import EventHandler
from kap_shared.messaging.timers import TimerHandler

from ..handlers.notify import Notifier


def event_handlers(notifier: Notifier) -> dict[type, EventHandler]:
    """Event type -> handler: every consumed event goes through the routing table."""
    return notifier.handlers()


def timer_handlers(notifier: Notifier) -> dict[str, TimerHandler]:
    """Timer kind -> handler."""
    return notifier.timer_handlers()
