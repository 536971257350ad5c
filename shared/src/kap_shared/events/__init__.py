"""The platform's integration events (CONTRACT sections 1-3), as pydantic models."""

from .catalog import EVENT_TYPES, EVENTS_BY_TOPIC, decode, event_types_on
from .envelope import Envelope, Payload, new_id, utc_now
from .intake import ConsentRecorded, PatientReferred, PatientScreened
from .monitoring import (
    DischargeCleared,
    DoseAdministered,
    ObservationDue,
    OutcomeRecorded,
    SafetyConcernRaised,
    VitalsAlert,
    VitalsAlertResolved,
    VitalsRecorded,
)
from .notifications import AlertAcknowledged, AlertEscalated, NotificationFailed, NotificationSent
from .records import PmfOpened, PmfOverdue, PmfReminder, PmfSubmitted
from .scheduling import (
    InductionReviewDue,
    IntegrationOverdue,
    PhaseAdvanced,
    SessionCancelled,
    SessionCheckedIn,
    SessionCompleted,
    SessionRescheduled,
    SessionScheduled,
    TreatmentPlanCreated,
)

__all__ = [
    "EVENTS_BY_TOPIC",
    "EVENT_TYPES",
    "AlertAcknowledged",
    "AlertEscalated",
    "ConsentRecorded",
    "DischargeCleared",
    "DoseAdministered",
    "Envelope",
    "InductionReviewDue",
    "IntegrationOverdue",
    "NotificationFailed",
    "NotificationSent",
    "ObservationDue",
    "OutcomeRecorded",
    "PatientReferred",
    "PatientScreened",
    "Payload",
    "PhaseAdvanced",
    "PmfOpened",
    "PmfOverdue",
    "PmfReminder",
    "PmfSubmitted",
    "SafetyConcernRaised",
    "SessionCancelled",
    "SessionCheckedIn",
    "SessionCompleted",
    "SessionRescheduled",
    "SessionScheduled",
    "TreatmentPlanCreated",
    "VitalsAlert",
    "VitalsAlertResolved",
    "VitalsRecorded",
    "decode",
    "event_types_on",
    "new_id",
    "utc_now",
]
