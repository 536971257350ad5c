"""Events scheduling reacts to (its consumer group is `scheduling`)."""

from __future__ import annotations

from kap_shared.events import PatientScreened
from kap_shared.messaging.consumer import EventHandler

from ..handlers.plans import on_patient_screened

HANDLERS: dict[type, EventHandler] = {
    PatientScreened: on_patient_screened,
}
