"""Keeping a service's own view of another service's facts (a projection of events).

`PlanColumns`/`planned` and `BookedSessionColumns`/`booked_session` are what every view
of a treatment plan or a booked session copies from TreatmentPlanCreated and
SessionScheduled (written once; each service's table adds its own columns), `carried`
copies any table's columns that an event carries, and `upsert` keeps such a row when the
event may be seen again (redelivery, a replay, a repeated fact)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from enum import Enum
from typing import Any, TypeVar

from sqlmodel import Field, SQLModel
from sqlmodel.ext.asyncio.session import AsyncSession

from .db import ScopeColumns
from .events.envelope import Envelope, scope_fields
from .events.scheduling import SessionScheduled, TreatmentPlanCreated

__all__ = ["BookedSessionColumns", "PlanColumns", "booked_session", "carried", "planned", "upsert"]

Row = TypeVar("Row", bound=SQLModel)


class PlanColumns(ScopeColumns):
    """The columns of a treatment plan a service's table copies from TreatmentPlanCreated
    (`class Plan(PlanColumns, ServiceTable, table=True)`; `Plan(**planned(event))`)."""

    plan_id: str = Field(primary_key=True, max_length=64)
    route: str = Field(max_length=32)
    protocol: str = Field(max_length=64)
    prescriber_id: str = Field(max_length=64)


class BookedSessionColumns(ScopeColumns):
    """The columns of a booked session a service's table copies from SessionScheduled
    (`class SessionFact(ServiceTable, BookedSessionColumns, table=True)`)."""

    session_id: str = Field(primary_key=True, max_length=64)
    plan_id: str = Field(max_length=64)
    phase: str = Field(max_length=16)
    starts_at: datetime
    ends_at: datetime
    prescriber_id: str | None = Field(default=None, max_length=64)
    therapist_id: str = Field(max_length=64)


def planned(event: TreatmentPlanCreated) -> dict[str, Any]:
    """The values of PlanColumns that TreatmentPlanCreated carries."""
    return carried(PlanColumns, event)


def booked_session(event: SessionScheduled) -> dict[str, Any]:
    """The values of BookedSessionColumns that SessionScheduled carries."""
    return carried(BookedSessionColumns, event)


def carried(table: type[SQLModel], event: Envelope) -> dict[str, Any]:
    """The values of `table`'s columns that `event` carries: the subject (patient, site)
    from the envelope, the rest from its data by name, a coded value as its code."""
    values = {**event.data.model_dump(), **scope_fields(event)}
    return {name: _stored(values[name]) for name in table.model_fields if name in values}


def _stored(value: Any) -> Any:
    return value.value if isinstance(value, Enum) else value


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
