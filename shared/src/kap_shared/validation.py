"""Input checks every service applies the same way: one copy, so they cannot drift.

`ID_PATTERN`: the identifiers clients choose (site, session, reading, recipient ids,
lot numbers): letters, digits and `._:-`, nothing that needs escaping in a path, a
Kafka key or a log line. `CLOCK_SKEW`: how far ahead of the server's clock a charted
time may be (a bedside device or front-desk clock running slightly fast); anything
later is "in the future" and refused with 422. `known_time_zone`: a site's or a
recipient's IANA zone.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Annotated
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field

ID_PATTERN = r"^[A-Za-z0-9._:-]+$"
ID_MAX_LENGTH = 64

# An identifier field, as a type: `site_id: Identifier`.
Identifier = Annotated[str, Field(min_length=1, max_length=ID_MAX_LENGTH, pattern=ID_PATTERN)]

CLOCK_SKEW = timedelta(seconds=5)


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
