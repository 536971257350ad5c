"""Events notifications reacts to (its consumer group is `notifications`)."""

from __future__ import annotations

from kap_shared.events import TreatmentPlanCreated
from kap_shared.messaging.consumer import EventHandler

from ..handlers.deliver import notify

HANDLERS: dict[type, EventHandler] = {
    TreatmentPlanCreated: notify,
}
