"""What scheduling is asked to do; also the HTTP request bodies, so FastAPI's
validation (422 naming the field) is the commands' own."""

from __future__ import annotations

from datetime import date, datetime, time
from typing import Literal

from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    ValidationInfo,
    field_validator,
)

from kap_shared.events.enums import CancelReason, Phase, Role
from kap_shared.validation import ID_PATTERN, ClinicalNote, known_time_zone, ordered

Weekday = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
Identifier = Field(min_length=1, max_length=64, pattern=ID_PATTERN)
OptionalIdentifier = Field(default=None, min_length=1, max_length=64, pattern=ID_PATTERN)

# `plan_suspended` is scheduling's own, used when an ineligible screening suspends a plan.
PLAN_SUSPENDED = CancelReason.PLAN_SUSPENDED


class Command(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class CreateSite(Command):
    site_id: str = Identifier
    name: str = Field(min_length=1, max_length=200)
    timezone: str = Field(default="UTC", max_length=64)
    # Spravato REMS certification of the setting (SPR-CERT-1): valid through this day.
    rems_certified_until: date | None = None

    @field_validator("timezone")
    @classmethod
    def _timezone(cls, value: str) -> str:
        return known_time_zone(value)


class UpdateSite(Command):
    """Renew (or withdraw) a REMS certification, rename, move time zone."""

    name: str | None = Field(default=None, min_length=1, max_length=200)
    timezone: str | None = Field(default=None, max_length=64)
    rems_certified_until: date | None = None

    @field_validator("timezone")
    @classmethod
    def _timezone(cls, value: str | None) -> str | None:
        return None if value is None else known_time_zone(value)


class AddRoom(Command):
    room_id: str = Identifier
    name: str = Field(min_length=1, max_length=200)


class WorkingHours(Command):
    start: time
    end: time

    _ends_after_start = ordered("start", "end", "end must be after start")


class CreateClinician(Command):
    clinician_id: str = Identifier
    role: Role
    sites: list[str] = Field(min_length=1)
    # In each site's local time; none at all means "not restricted" (SCH-HOURS-1).
    working_hours: dict[Weekday, WorkingHours] = Field(default_factory=dict)


def _ends_after_starts(value: datetime, info: ValidationInfo) -> datetime:
    starts_at = info.data.get("starts_at")
    if isinstance(starts_at, datetime) and value <= starts_at:
        raise ValueError("ends_at must be after starts_at")
    return value


class BookSession(Command):
    patient_id: str = Identifier
    phase: Phase
    starts_at: AwareDatetime
    ends_at: AwareDatetime
    room_id: str = Identifier
    # Required, except for the dosing session of a protocol without the therapist at the
    # chair (esketamine): then the plan's therapist is named and not held (KAP-3).
    therapist_id: str | None = OptionalIdentifier
    # Required for dosing (KAP-3, SPR-CERT-2); optional for preparation and integration.
    prescriber_id: str | None = OptionalIdentifier
    # The nurse monitoring the session, when known (SessionScheduled.nurse_id).
    nurse_id: str | None = OptionalIdentifier

    @field_validator("ends_at")
    @classmethod
    def _ends(cls, value: datetime, info: ValidationInfo) -> datetime:
        return _ends_after_starts(value, info)


class RescheduleSession(Command):
    """New times for a scheduled session; room and clinicians stay (cancel and book
    again to change them)."""

    starts_at: AwareDatetime
    ends_at: AwareDatetime

    @field_validator("ends_at")
    @classmethod
    def _ends(cls, value: datetime, info: ValidationInfo) -> datetime:
        return _ends_after_starts(value, info)


class CancelSession(Command):
    # Coded (kap_shared's CancelReason), because SessionCancelled carries it: no free
    # text (and so no PHI) on the wire.
    reason: CancelReason
    # Free text for the clinic's own record; it never leaves scheduling.
    note: ClinicalNote = None

    @field_validator("reason")
    @classmethod
    def _not_scheduling_own(cls, value: CancelReason) -> CancelReason:
        if value is PLAN_SUSPENDED:
            raise ValueError("plan_suspended is set by scheduling when a plan is suspended")
        return value


class CheckIn(Command):
    """The patient's attestations; all three are required for a dosing session
    (fasting: SPR-PRE-1/2, KET-PRE-1; transport or escort: SPR-PRE-8, KET-PRE-3)."""

    last_food_at: AwareDatetime | None = None
    last_liquid_at: AwareDatetime | None = None
    transport_arranged: StrictBool | None = None


class ClearHold(Command):
    # The prescriber's risk assessment in their words; it never leaves scheduling.
    reason: str = Field(min_length=1, max_length=2000)
