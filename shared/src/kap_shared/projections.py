"""Keeping a service's own view of another service's facts (a projection of events).

`booked_session` is what every view of a booked session copies from SessionScheduled
(written once; each service's table adds its own columns), and `upsert` keeps such a row
when the event may be seen again (redelivery, a replay, a repeated fact)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar

from sqlmodel import SQLModel
from sqlmodel.ext.asyncio.session import AsyncSession

from .events.scheduling import SessionScheduled

__all__ = ["booked_session", "upsert"]

Row = TypeVar("Row", bound=SQLModel)


def booked_session(event: SessionScheduled) -> dict[str, Any]:
    """The columns of a booked session that SessionScheduled carries."""
    data = event.data
    return {
        "session_id": data.session_id,
        "patient_id": event.patient_id,
        "site_id": event.site_id,
        "plan_id": data.plan_id,
        "phase": data.phase.value,
        "starts_at": data.starts_at,
        "ends_at": data.ends_at,
        "therapist_id": data.therapist_id,
        "prescriber_id": data.prescriber_id,
    }


async def upsert(
    session: AsyncSession,
    model: type[Row],
    key: Any,
    values: Mapping[str, Any],
    *,
    when_new: Mapping[str, Any] | None = None,
) -> Row:
    """The row of `model` with primary key `key`, created (with `when_new` too) when
    missing, with `values` set either way; added to the session (the caller commits)."""
    row = await session.get(model, key)
    if row is None:
        row = model(**(when_new or {}), **values)
    else:
        for name, value in values.items():
            setattr(row, name, value)
    session.add(row)
    return row
