"""What scheduling is asked to do; also the HTTP request bodies."""

from __future__ import annotations

from datetime import date, time
from typing import Literal, Self

from pydantic import BaseModel, ConfigDict, Field, model_validator

from kap_shared.events.enums import Role

Weekday = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
Identifier = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9._:-]+$")


class Command(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class CreateSite(Command):
    site_id: str = Identifier
    name: str = Field(min_length=1, max_length=200)
    timezone: str = Field(default="UTC", max_length=64)
    rems_certified_until: date | None = None


class AddRoom(Command):
    room_id: str = Identifier
    name: str = Field(min_length=1, max_length=200)


class WorkingHours(Command):
    start: time
    end: time

    @model_validator(mode="after")
    def _ends_after_start(self) -> Self:
        if self.end <= self.start:
            raise ValueError("end must be after start")
        return self


class CreateClinician(Command):
    clinician_id: str = Identifier
    role: Role
    sites: list[str] = Field(min_length=1)
    working_hours: dict[Weekday, WorkingHours] = Field(default_factory=dict)
