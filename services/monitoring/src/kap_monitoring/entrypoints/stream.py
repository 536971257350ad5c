"""Events monitoring reacts to (its consumer group is `monitoring`)."""

from __future__ import annotations

from kap_shared.events import PatientScreened, SessionCheckedIn, SessionScheduled
from kap_shared.messaging.consumer import EventHandler

from ..handlers.sessions import on_patient_screened, on_session_checked_in, on_session_scheduled

HANDLERS: dict[type, EventHandler] = {
    PatientScreened: on_patient_screened,
    SessionScheduled: on_session_scheduled,
    SessionCheckedIn: on_session_checked_in,
}
