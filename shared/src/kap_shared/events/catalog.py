"""Per-topic discriminated unions and the one way to decode a message.

`decode(topic, raw)` returns the concrete event class for the message's
`event_type`, or raises `pydantic.ValidationError` naming the bad field.
"""

from __future__ import annotations

from functools import cache
from typing import Annotated, Any, Union

from pydantic import Field, TypeAdapter

from . import intake, monitoring, notifications, records, scheduling
from .envelope import Envelope
from .topics import (
    INTAKE_EVENTS,
    MONITORING_EVENTS,
    MONITORING_VITALS,
    NOTIFICATIONS_EVENTS,
    RECORDS_EVENTS,
    SCHEDULING_EVENTS,
)

EVENTS_BY_TOPIC: dict[str, tuple[type[Envelope], ...]] = {
    INTAKE_EVENTS: (intake.PatientReferred, intake.PatientScreened, intake.ConsentRecorded),
    SCHEDULING_EVENTS: (
        scheduling.TreatmentPlanCreated,
        scheduling.SessionScheduled,
        scheduling.SessionRescheduled,
        scheduling.SessionCancelled,
        scheduling.SessionCheckedIn,
        scheduling.SessionCompleted,
        scheduling.PhaseAdvanced,
        scheduling.IntegrationOverdue,
        scheduling.InductionReviewDue,
    ),
    MONITORING_VITALS: (monitoring.VitalsRecorded,),
    MONITORING_EVENTS: (
        monitoring.DoseAdministered,
        monitoring.VitalsAlert,
        monitoring.VitalsAlertResolved,
        monitoring.ObservationDue,
        monitoring.DischargeCleared,
        monitoring.OutcomeRecorded,
        monitoring.SafetyConcernRaised,
    ),
    NOTIFICATIONS_EVENTS: (
        notifications.NotificationSent,
        notifications.NotificationFailed,
        notifications.AlertAcknowledged,
        notifications.AlertEscalated,
    ),
    RECORDS_EVENTS: (
        records.PmfOpened,
        records.PmfReminder,
        records.PmfOverdue,
        records.PmfSubmitted,
    ),
}

EVENT_TYPES: dict[str, type[Envelope]] = {
    cls.model_fields["event_type"].default: cls
    for classes in EVENTS_BY_TOPIC.values()
    for cls in classes
}


class UnknownTopicError(LookupError):
    pass


@cache
def topic_adapter(topic: str) -> TypeAdapter[Any]:
    """A TypeAdapter over the discriminated union of the topic's event types."""
    try:
        classes = EVENTS_BY_TOPIC[topic]
    except KeyError:
        raise UnknownTopicError(topic) from None
    if len(classes) == 1:
        return TypeAdapter(classes[0])
    union = Annotated[Union[classes], Field(discriminator="event_type")]  # type: ignore[valid-type]  # noqa: UP007
    return TypeAdapter(union)


def decode(topic: str, raw: bytes | str | dict[str, Any]) -> Envelope:
    adapter = topic_adapter(topic)
    if isinstance(raw, dict):
        event: Envelope = adapter.validate_python(raw)
    else:
        event = adapter.validate_json(raw)
    return event
