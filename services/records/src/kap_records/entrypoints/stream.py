"""Events records reacts to (consumer group `records`): every event type of every
topic, its own included, all through the one projector; and its durable timers."""

from __future__ import annotations

from kap_shared.events import EVENT_TYPES
from kap_shared.messaging.consumer import EventHandler
from kap_shared.messaging.timers import TimerHandler
from kap_shared.rules import SiteRules

from ..domain.rules import RecordsRules
from ..handlers.pmf import timer_handlers
from ..handlers.projection import projector


def handlers(rules: SiteRules[RecordsRules], *, live: bool = True) -> dict[type, EventHandler]:
    project = projector(rules, live=live)
    return dict.fromkeys(EVENT_TYPES.values(), project)


def timers(rules: SiteRules[RecordsRules]) -> dict[str, TimerHandler]:
    return timer_handlers(rules)
