"""Events records reacts to (consumer group `records`): every event type of every
topic, its own included, all through the one projector; and its durable timers. The
live service files readings in batches instead (`vitals_batch`): `live_handlers`."""

from __future__ import annotations

from kap_shared.events import EVENT_TYPES, VitalsRecorded
from kap_shared.messaging.consumer import EventHandler
from kap_shared.messaging.timers import TimerHandler
from kap_shared.rules import SiteRules

from ..domain.rules import RecordsRules
from ..handlers.pmf import timer_handlers
from ..handlers.projection import projector


def handlers(rules: SiteRules[RecordsRules], *, live: bool = True) -> dict[type, EventHandler]:
    project = projector(rules, live=live)
    return dict.fromkeys(EVENT_TYPES.values(), project)


def live_handlers(rules: SiteRules[RecordsRules]) -> dict[type, EventHandler]:
    """The live consumer's: every event type but the readings, which `vitals_batch` files."""
    return {cls: h for cls, h in handlers(rules).items() if cls is not VitalsRecorded}


def timers(rules: SiteRules[RecordsRules]) -> dict[str, TimerHandler]:
    return timer_handlers(rules)
