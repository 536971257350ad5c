"""Reading records' tables."""

from __future__ import annotations

from datetime import datetime
from typing import Any, TypeVar

from sqlalchemy import ColumnElement
from sqlmodel import SQLModel, col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from kap_shared.events.envelope import as_utc

from ..domain.timeline import ReadingFact
from .tables import Entry, PlanFact, PmfForm, Reading, SessionFact

_Row = TypeVar("_Row", bound=SQLModel)


# How each table is listed: by a time, then its id as a tie-break, so two reads list the
# same rows the same way.
_ORDER: dict[type[SQLModel], tuple[Any, Any]] = {
    Entry: (Entry.occurred_at, Entry.event_id),
    Reading: (Reading.recorded_at, Reading.event_id),
    SessionFact: (SessionFact.starts_at, SessionFact.session_id),
    PlanFact: (PlanFact.created_at, PlanFact.plan_id),
}


async def listed(
    session: AsyncSession, table: type[_Row], condition: ColumnElement[bool] | bool
) -> list[_Row]:
    """The rows of `table` meeting `condition`, in the table's order."""
    result = await session.exec(select(table).where(condition).order_by(*map(col, _ORDER[table])))
    return list(result)


def reading_fact(row: Reading) -> ReadingFact:
    return ReadingFact(row.event_id, row.session_id, as_utc(row.recorded_at), row.values)


async def pmf_of_session(session: AsyncSession, session_id: str) -> PmfForm | None:
    return (await session.exec(select(PmfForm).where(PmfForm.session_id == session_id))).first()


async def pmfs(
    session: AsyncSession,
    *,
    site_ids: list[str] | None,
    due_before: datetime | None = None,
    patient_id: str | None = None,
) -> list[PmfForm]:
    query = select(PmfForm)
    if site_ids is not None:
        query = query.where(col(PmfForm.site_id).in_(site_ids))
    if due_before is not None:
        query = query.where(PmfForm.due_by < due_before)
    if patient_id is not None:
        query = query.where(PmfForm.patient_id == patient_id)
    result = await session.exec(query.order_by(col(PmfForm.due_by), col(PmfForm.pmf_id)))
    return list(result)


async def previous_completions(session: AsyncSession, form: PmfForm) -> dict[str, str]:
    """REMS ids completed on the patient's (setting: the site's) earlier forms."""
    carried: dict[str, str] = {}
    earlier = await session.exec(
        select(PmfForm)
        .where(PmfForm.site_id == form.site_id)
        .where(PmfForm.session_at < form.session_at)
        .order_by(col(PmfForm.session_at))
    )
    for row in earlier:
        if value := row.completions.get("setting_rems_id"):
            carried["setting_rems_id"] = value
        if row.patient_id == form.patient_id and (value := row.completions.get("patient_rems_id")):
            carried["patient_rems_id"] = value
    return carried
