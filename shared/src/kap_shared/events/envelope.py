"""The event envelope of CONTRACT section 1, shared by every topic.

Each concrete event is an `Envelope` subclass that pins `event_type` to a
literal and types `data`; per-topic discriminated unions live in `catalog`.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any, ClassVar, Protocol, Self, TypedDict

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, field_serializer

SCHEMA_VERSION = 1


def utc_now() -> datetime:
    return datetime.now(UTC)


def as_utc(value: datetime) -> datetime:
    """SQLite hands back naive datetimes; everything is stored in UTC."""
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def new_id() -> str:
    return str(uuid.uuid4())


class Scoped(Protocol):
    """A row or an event about one patient at one site."""

    @property
    def site_id(self) -> str: ...
    @property
    def patient_id(self) -> str: ...


class Subject(Scoped, Protocol):
    """What an event is about: a row (or an event) carrying the patient, the site and
    the care episode (`correlation_id`)."""

    @property
    def correlation_id(self) -> str | None: ...


def envelope_fields(
    subject: Subject,
    *,
    producer: str,
    causation_id: str | None = None,
    correlation_fallback: str | None = None,
    occurred_at: datetime | None = None,
) -> dict[str, Any]:
    """The envelope fields of an event about `subject` (the one way every service
    builds them): `SessionCancelled(**envelope_fields(row, producer=...), data=...)`.
    `correlation_fallback` names the episode when the subject has none recorded."""
    fields: dict[str, Any] = {
        "producer": producer,
        "site_id": subject.site_id,
        "patient_id": subject.patient_id,
        "correlation_id": subject.correlation_id or correlation_fallback,
        "causation_id": causation_id,
    }
    if occurred_at is not None:
        fields["occurred_at"] = occurred_at
    return fields


class Scope(TypedDict):
    patient_id: str
    site_id: str


def scope_fields(about: Scoped) -> Scope:
    """`patient_id` and `site_id` of an event (or a row), for the row kept about it
    (the inverse of `envelope_fields`): `Reading(**scope_fields(event), ...)`."""
    return {"patient_id": about.patient_id, "site_id": about.site_id}


class Payload(BaseModel):
    """Base of every `data` object.

    Unknown fields are ignored, so a producer may add optional fields (the
    contract allows it) without breaking consumers still on the old model.
    """

    model_config = ConfigDict(extra="ignore", frozen=True)


class Envelope(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    # The topic an event type is published on; set on each concrete class.
    topic: ClassVar[str]

    event_id: uuid.UUID = Field(default_factory=uuid.uuid4)
    event_type: str
    schema_version: int = Field(default=SCHEMA_VERSION, ge=1)
    occurred_at: AwareDatetime = Field(default_factory=utc_now)
    producer: str = Field(min_length=1)
    site_id: str = Field(min_length=1)
    patient_id: str = Field(min_length=1)
    correlation_id: str = Field(min_length=1)
    causation_id: str | None = None
    data: Payload

    @field_serializer("occurred_at")
    def _rfc3339_utc(self, value: datetime) -> str:
        return value.astimezone(UTC).isoformat().replace("+00:00", "Z")

    @classmethod
    def caused_by(cls, cause: Envelope, *, producer: str, data: Any, **overrides: Any) -> Self:
        """A follow-up event in the same chain: same patient, site, correlation."""
        fields = envelope_fields(cause, producer=producer, causation_id=str(cause.event_id))
        fields.update(data=data, **overrides)
        return cls(**fields)

    def to_json(self) -> bytes:
        return self.model_dump_json().encode()

    @property
    def key(self) -> bytes:
        """Kafka record key: every fact about one patient stays in order."""
        return self.patient_id.encode()
