"""Events scheduling reacts to (its consumer group is `scheduling`), and its
durable timers."""

from __future__ import annotations

from kap_shared.events import (
    ConsentRecorded,
    DischargeCleared,
    PatientScreened,
    SafetyConcernRaised,
)
from kap_shared.messaging.consumer import EventHandler
from kap_shared.messaging.timers import TimerHandler
from kap_shared.rules import SiteRules

from ..domain.rules import SchedulingRules
from ..handlers.deadlines import TIMERS as _TIMERS
from ..handlers.induction import INDUCTION_REVIEW, on_week_boundary
from ..handlers.plans import on_patient_screened
from ..handlers.reactions import on_consent_recorded, on_discharge_cleared, on_safety_concern

TIMERS: dict[str, TimerHandler] = {**_TIMERS, INDUCTION_REVIEW: on_week_boundary}


def handlers(rules: SiteRules[SchedulingRules]) -> dict[type, EventHandler]:
    return {
        # kap.intake.events.v1
        PatientScreened: on_patient_screened(rules),
        ConsentRecorded: on_consent_recorded,
        # kap.monitoring.events.v1
        SafetyConcernRaised: on_safety_concern(rules),
        DischargeCleared: on_discharge_cleared,
    }
