"""Per-topic discriminated unions and the ways to decode a message.

`decode(topic, raw)` returns the concrete event class for the message's
`event_type`, or raises `pydantic.ValidationError` naming the bad field.

Consumers are tolerant readers (tech-notes G.6): `event_type_of(headers, raw)`
names the type from the `event_type` header the outbox sets (or a cheap parse
of the envelope when a producer sent no header) *before* any validation, and
`decode_as(event_type, raw)` validates against that one class only. A consumer
therefore never validates a type it does not handle, and a producer that
deploys a new event type first is not dead-lettered by older consumers.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import cache
from typing import Annotated, Any, Union

from pydantic import BaseModel, Field, TypeAdapter

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


def event_types_on(*topics: str) -> tuple[str, ...]:
    """The event types of the topics, in catalog order: what the service owning
    those topics publishes (each topic has one producer, CONTRACT section 2)."""
    try:
        classes = [cls for topic in topics for cls in EVENTS_BY_TOPIC[topic]]
    except KeyError as missing:
        raise UnknownTopicError(missing.args[0]) from None
    return tuple(cls.model_fields["event_type"].default for cls in classes)


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


class _EventTypeOnly(BaseModel):
    """The envelope's discriminator and nothing else (extra fields ignored)."""

    event_type: str


# The outbox's header naming the event type of a message (CONTRACT section 1).
EVENT_TYPE_HEADER = "event_type"


def event_type_of(headers: Mapping[str, Any] | None, raw: bytes | str) -> str:
    """The message's event type without validating its payload: the `event_type`
    header when present, else the envelope's field. Raises `json.JSONDecodeError`
    or `pydantic.ValidationError` when the message is not an envelope at all."""
    header = (headers or {}).get(EVENT_TYPE_HEADER)
    if isinstance(header, bytes):
        header = header.decode("utf-8", errors="replace")
    if header:
        return str(header)
    return _EventTypeOnly.model_validate_json(raw).event_type


def decode_as(event_type: str, raw: bytes | str | dict[str, Any]) -> Envelope:
    """Validate a message as the one (known) event type it claims to be.

    A payload whose `event_type` field disagrees with `event_type` fails the
    class's literal and raises `pydantic.ValidationError`."""
    cls = EVENT_TYPES[event_type]
    if isinstance(raw, dict):
        return cls.model_validate(raw)
    return cls.model_validate_json(raw)
