"""Events scheduling publishes on `kap.scheduling.events.v1`."""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import AwareDatetime, Field

from ..validation import ordered
from .enums import Phase, Route
from .envelope import Envelope, Payload
from .topics import SCHEDULING_EVENTS


class TreatmentPlanCreatedData(Payload):
    plan_id: str
    route: Route
    protocol: str
    prescriber_id: str
    therapist_id: str
    planned_dosing_sessions: int = Field(ge=1)


class SessionScheduledData(Payload):
    session_id: str
    plan_id: str
    phase: Phase
    sequence: int = Field(ge=1)
    starts_at: AwareDatetime
    ends_at: AwareDatetime
    room_id: str
    prescriber_id: str | None = None
    therapist_id: str
    nurse_id: str | None = None  # CONTRACT 6.2

    _ends_after_start = ordered("starts_at", "ends_at", "ends_at must be after starts_at")


class SessionRescheduledData(Payload):
    session_id: str
    phase: Phase
    starts_at: AwareDatetime
    ends_at: AwareDatetime
    previous_starts_at: AwareDatetime


class SessionCancelledData(Payload):
    session_id: str
    phase: Phase
    reason: str


class SessionCheckedInData(Payload):
    session_id: str
    phase: Phase
    checked_in_at: AwareDatetime


class SessionCompletedData(Payload):
    session_id: str
    phase: Phase
    completed_at: AwareDatetime
    # Optional facts for the handoffs notifications routes (issue 11); absent = not told.
    plan_id: str | None = None
    # KAP-2: the integration session owed after a dosing session is due by then.
    integration_due_by: AwareDatetime | None = None
    # Phase progress: the plan's completed dosing sessions (this one included) and planned.
    dosing_sessions_completed: int | None = Field(default=None, ge=0)
    planned_dosing_sessions: int | None = Field(default=None, ge=1)
    # Safety holds on dosing still open (SCH-HOLD-1): 0 = the next dose is not on hold.
    open_dosing_holds: int | None = Field(default=None, ge=0)


class PhaseAdvancedData(Payload):
    plan_id: str
    from_phase: Phase | None = None
    to_phase: Phase


class IntegrationOverdueData(Payload):
    dosing_session_id: str
    due_by: AwareDatetime
    therapist_id: str
    rule_id: str | None = None  # CONTRACT 6.2: KAP-2


class TreatmentPlanCreated(Envelope):
    topic: ClassVar[str] = SCHEDULING_EVENTS
    event_type: Literal["TreatmentPlanCreated"] = "TreatmentPlanCreated"
    data: TreatmentPlanCreatedData


class SessionScheduled(Envelope):
    topic: ClassVar[str] = SCHEDULING_EVENTS
    event_type: Literal["SessionScheduled"] = "SessionScheduled"
    data: SessionScheduledData


class SessionRescheduled(Envelope):
    topic: ClassVar[str] = SCHEDULING_EVENTS
    event_type: Literal["SessionRescheduled"] = "SessionRescheduled"
    data: SessionRescheduledData


class SessionCancelled(Envelope):
    topic: ClassVar[str] = SCHEDULING_EVENTS
    event_type: Literal["SessionCancelled"] = "SessionCancelled"
    data: SessionCancelledData


class SessionCheckedIn(Envelope):
    topic: ClassVar[str] = SCHEDULING_EVENTS
    event_type: Literal["SessionCheckedIn"] = "SessionCheckedIn"
    data: SessionCheckedInData


class SessionCompleted(Envelope):
    topic: ClassVar[str] = SCHEDULING_EVENTS
    event_type: Literal["SessionCompleted"] = "SessionCompleted"
    data: SessionCompletedData


class PhaseAdvanced(Envelope):
    topic: ClassVar[str] = SCHEDULING_EVENTS
    event_type: Literal["PhaseAdvanced"] = "PhaseAdvanced"
    data: PhaseAdvancedData


class IntegrationOverdue(Envelope):
    topic: ClassVar[str] = SCHEDULING_EVENTS
    event_type: Literal["IntegrationOverdue"] = "IntegrationOverdue"
    data: IntegrationOverdueData


class InductionReviewDueData(Payload):
    """SPR-SCH-1: induction complete (8th dosing session, or the end of week 4):
    the prescriber evaluates the benefit before treatment continues."""

    plan_id: str
    prescriber_id: str
    dosing_sessions_completed: int = Field(ge=0)
    rule_id: str = "SPR-SCH-1"


class InductionReviewDue(Envelope):
    topic: ClassVar[str] = SCHEDULING_EVENTS
    event_type: Literal["InductionReviewDue"] = "InductionReviewDue"
    data: InductionReviewDueData
