"""Query parameters that several services' routes take, declared and documented once."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Annotated

from fastapi import Query
from pydantic import AwareDatetime

# A time window [from, to) (a site's day on the treatment floor): `from` is required,
# `to` defaults to one day later (`window_end`).
WindowStart = Annotated[AwareDatetime, Query(alias="from", description="ISO 8601 with offset")]
WindowEnd = Annotated[AwareDatetime | None, Query(alias="to", description="default: from + 1 day")]


def window_end(start: datetime, end: datetime | None) -> datetime:
    """The window's `to`: as given, or one day after `from`."""
    return end or start + timedelta(days=1)
