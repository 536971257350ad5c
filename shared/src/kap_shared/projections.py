"""Keeping a service's own view of another service's facts (a projection of events).

`PlanColumns`/`planned` and `booked_session` are what every view of a treatment plan or
a booked session copies from TreatmentPlanCreated and SessionScheduled (written once;
each service's table adds its own columns), and `upsert` keeps such a row when the event
may be seen again (redelivery, a replay, a repeated fact)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar

from sqlmodel import Field, SQLModel
from sqlmodel.ext.asyncio.session import AsyncSession

from .events.scheduling import SessionScheduled, TreatmentPlanCreated

__all__ = ["PlanColumns", "booked_session", "planned", "upsert"]

Row = TypeVar("Row", bound=SQLModel)


class PlanColumns(SQLModel):
    """The columns of a treatment plan a service's table copies from TreatmentPlanCreated
    (`class Plan(PlanColumns, ServiceTable, table=True)`; `Plan(**planned(event))`)."""

    plan_id: str = Field(primary_key=True, max_length=64)
    patient_id: str = Field(index=True, max_length=64)
    site_id: str = Field(max_length=64)
    route: str = Field(max_length=32)
    protocol: str = Field(max_length=64)
    prescriber_id: str = Field(max_length=64)


def planned(event: TreatmentPlanCreated) -> dict[str, Any]:
    """The values of PlanColumns that TreatmentPlanCreated carries."""
    data = event.data
    return {
        "plan_id": data.plan_id,
        "patient_id": event.patient_id,
        "site_id": event.site_id,
        "route": data.route.value,
        "protocol": data.protocol,
        "prescriber_id": data.prescriber_id,
    }


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
