"""Input checks every service applies the same way: one copy, so they cannot drift.

`ID_PATTERN`: the identifiers clients choose (site, session, reading, recipient ids,
lot numbers): letters, digits and `._:-`, nothing that needs escaping in a path, a
Kafka key or a log line. `CLOCK_SKEW`: how far ahead of the server's clock a charted
time may be (a bedside device or front-desk clock running slightly fast); anything
later is "in the future" and refused with 422. `known_time_zone`: a site's or a
recipient's IANA zone. `ordered`: two fields of which one must be the greater (an end
after its start, a systolic above its diastolic). `ClinicalNote`: a clinician's optional
free text beside a coded decision; it stays in the service's database, never in an event.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Annotated, Any, TypeVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, Field, model_validator

ID_PATTERN = r"^[A-Za-z0-9._:-]+$"
ID_MAX_LENGTH = 64

# An identifier field, as a type: `site_id: Identifier`.
Identifier = Annotated[str, Field(min_length=1, max_length=ID_MAX_LENGTH, pattern=ID_PATTERN)]

# A clinician's own words beside a coded reason: `note: ClinicalNote = None`.
ClinicalNote = Annotated[str, Field(max_length=2000)] | None

CLOCK_SKEW = timedelta(seconds=5)

_Model = TypeVar("_Model", bound=BaseModel)


def in_the_future(value: datetime, now: datetime) -> bool:
    """True when `value` is later than `now` plus the allowed clock skew."""
    return value > now + CLOCK_SKEW


def known_time_zone(value: str) -> str:
    """A pydantic validator: `value` if it names an IANA time zone, else ValueError (422)."""
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError(
            f"unknown time zone {value!r} (use an IANA name such as Europe/Berlin)"
        ) from exc
    return value


def ordered(lower: str, higher: str, message: str) -> Any:
    """A model validator: field `higher` must be greater than field `lower`, else
    ValueError(`message`) (a 422 naming both). In the model's body:
    `_ends_after_start = ordered("starts_at", "ends_at", "ends_at must be after starts_at")`."""

    def check(model: _Model) -> _Model:
        if getattr(model, higher) <= getattr(model, lower):
            raise ValueError(message)
        return model

    return model_validator(mode="after")(check)
