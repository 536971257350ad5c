"""What notifications is asked to do over HTTP. These are the request bodies,
so FastAPI's validation (422 naming the field) is the commands' own."""

from __future__ import annotations

from datetime import time
from typing import Annotated, Literal, Self

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    EmailStr,
    Field,
    field_validator,
    model_validator,
)

from kap_shared.events.enums import Channel
from kap_shared.validation import Identifier, known_time_zone

from .routing import Priority

ClockTime = Annotated[str, Field(pattern=r"^([01]\d|2[0-3]):[0-5]\d$", examples=["21:00"])]
# E.164: the form SMS providers take.
Phone = Annotated[str, Field(pattern=r"^\+[1-9]\d{6,14}$", examples=["+15550100200"])]
# Roles a clinician directory entry can hold (devices are never notified).
RecipientRole = Literal["prescriber", "therapist", "nurse", "coordinator", "admin"]


class Command(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


def _no_duplicates(values: list[str]) -> list[str]:
    if len(set(values)) != len(values):
        raise ValueError("duplicate entries")
    return values


class QuietHoursIn(Command):
    """Local time window (start inclusive, end exclusive; may span midnight)."""

    start: ClockTime
    end: ClockTime
    timezone: str = Field(min_length=1, max_length=64, examples=["America/New_York"])

    _known_zone = field_validator("timezone")(known_time_zone)

    @model_validator(mode="after")
    def _not_empty(self) -> Self:
        if self.start == self.end:
            raise ValueError("start and end must differ")
        return self

    def times(self) -> tuple[time, time]:
        return time.fromisoformat(self.start), time.fromisoformat(self.end)


ChannelList = Annotated[list[Channel], Field(max_length=3), AfterValidator(_no_duplicates)]


class PutRecipient(Command):
    """A clinician as a notification recipient.

    `role` and `sites` mirror scheduling's clinic directory (the contract has
    no directory events), so "the site's prescribers" and "the site's
    coordinators" can be resolved here. `email` and `phone` are contact
    details: they stay in this service and never appear in events or logs.
    """

    role: RecipientRole
    sites: Annotated[list[Identifier], Field(min_length=1, max_length=50)]
    email: EmailStr | None = None
    phone: Phone | None = None
    # Per priority: the channels this recipient wants (see the routing rules).
    channels: dict[Priority, ChannelList] = Field(default_factory=dict)
    quiet_hours: QuietHoursIn | None = None

    @field_validator("sites")
    @classmethod
    def _unique_sites(cls, sites: list[str]) -> list[str]:
        return _no_duplicates(sites)


class LevelIn(Command):
    after_seconds: int = Field(ge=1, le=7 * 24 * 3600)
    recipient_ids: Annotated[
        list[Identifier], Field(min_length=1, max_length=50), AfterValidator(_no_duplicates)
    ]


class PutEscalation(Command):
    """A site's escalation levels; `after_seconds` counts from the first
    notification and must strictly increase. An empty list disables them."""

    levels: Annotated[list[LevelIn], Field(max_length=10)]
