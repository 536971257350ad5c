"""Events monitoring reacts to (its consumer group is `monitoring`).

One event at a time, through the platform's inbox-guarded consumer: baselines from
intake, plans and sessions from scheduling. The high-volume vitals topic has its own batch
consumer (`vitals_batch`).
"""

from __future__ import annotations

from kap_shared.events import (
    PatientScreened,
    SessionCancelled,
    SessionCheckedIn,
    SessionRescheduled,
    SessionScheduled,
    TreatmentPlanCreated,
)
from kap_shared.messaging.consumer import EventHandler

from ..handlers.sessions import (
    on_patient_screened,
    on_session_cancelled,
    on_session_checked_in,
    on_session_rescheduled,
    on_session_scheduled,
    on_treatment_plan_created,
)

HANDLERS: dict[type, EventHandler] = {
    PatientScreened: on_patient_screened,
    TreatmentPlanCreated: on_treatment_plan_created,
    SessionScheduled: on_session_scheduled,
    SessionRescheduled: on_session_rescheduled,
    SessionCheckedIn: on_session_checked_in,
    SessionCancelled: on_session_cancelled,
}
