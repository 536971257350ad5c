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
from typing import Any, Protocol, TypeVar

from sqlmodel import Field, SQLModel
from sqlmodel.ext.asyncio.session import AsyncSession

from .db import ScopeColumns
from .events.envelope import Scope, Scoped, scope_fields
from .events.scheduling import SessionScheduled, TreatmentPlanCreated

__all__ = [
    "BookedSessionColumns",
    "Carrying",
    "PlanColumns",
    "booked_session",
    "carried",
    "column_value",
    "planned",
    "upsert",
]

Row = TypeVar("Row", bound=SQLModel)
_SCOPE = Scope.__required_keys__  # what `scope_fields` gives: patient_id, site_id


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


class Carrying(Scoped, Protocol):
    """An event as `carried` reads it: a contract model (`Envelope`), or the msgspec
    struct generated from one (`events.vitals_codec`, the vitals batches)."""

    @property
    def data(self) -> object: ...


def carried(table: type[SQLModel], event: Carrying) -> dict[str, Any]:
    """The values of `table`'s columns that `event` carries: the subject (patient, site)
    from the envelope, the rest from its data by name, a coded value as its code. Read by
    attribute, column by column, never by dumping the whole data (a batch of thousands
    of readings paid for that, bench/README.md round 20)."""
    data = event.data
    scoped, named = _columns(table, type(data))
    scope = scope_fields(event)
    row: dict[str, Any] = {name: scope[name] for name in scoped}  # type: ignore[literal-required]
    for name in named:
        row[name] = column_value(getattr(data, name))
    return row


# (table, data type) -> its columns from the scope and from the data (`_columns`).
_COLUMNS: dict[tuple[type[SQLModel], type], tuple[tuple[str, ...], tuple[str, ...]]] = {}


def _columns(table: type[SQLModel], kind: type) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """`table`'s columns taken from an event's scope, and those its data of type `kind`
    (a contract model, or a msgspec struct generated from one) carries by name; found
    once per pair."""
    found = _COLUMNS.get((table, kind))
    if found is None:
        struct_fields: tuple[str, ...] | None = getattr(kind, "__struct_fields__", None)
        fields = struct_fields if struct_fields is not None else kind.model_fields  # type: ignore[attr-defined]
        columns = tuple(table.model_fields)
        scoped = tuple(name for name in columns if name in _SCOPE)
        named = tuple(name for name in columns if name not in _SCOPE and name in fields)
        found = _COLUMNS[(table, kind)] = (scoped, named)
    return found


def column_value(value: Any) -> Any:
    """An event's value as a column keeps it: a coded value as its code."""
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
