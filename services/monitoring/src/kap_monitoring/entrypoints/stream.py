"""Events monitoring reacts to (its consumer group is `monitoring`).

One event at a time, through the platform's inbox-guarded consumer: baselines from
intake, plans and sessions from scheduling. The high-volume vitals topic has its own batch
consumer (`vitals_batch`).
"""

from __future__ import annotations

from kap_shared import events
from kap_shared.messaging.consumer import EventHandler

from ..handlers import sessions

HANDLERS: dict[type, EventHandler] = {
    events.PatientScreened: sessions.on_patient_screened,
    events.TreatmentPlanCreated: sessions.on_treatment_plan_created,
    events.SessionScheduled: sessions.on_session_scheduled,
    events.SessionRescheduled: sessions.on_session_rescheduled,
    events.SessionCheckedIn: sessions.on_session_checked_in,
    events.SessionCancelled: sessions.on_session_cancelled,
}
