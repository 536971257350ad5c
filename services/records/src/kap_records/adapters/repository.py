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


async def _ordered(
    session: AsyncSession, table: type[_Row], condition: ColumnElement[bool] | bool, *order: Any
) -> list[_Row]:
    """The rows of `table` meeting `condition`, in `order` (a time, then an id as tie-break,
    so two reads list the same rows the same way)."""
    result = await session.exec(select(table).where(condition).order_by(*map(col, order)))
    return list(result)


async def entries_of(session: AsyncSession, patient_id: str) -> list[Entry]:
    return await _ordered(
        session, Entry, Entry.patient_id == patient_id, Entry.occurred_at, Entry.event_id
    )


async def session_entries(session: AsyncSession, session_id: str) -> list[Entry]:
    return await _ordered(
        session, Entry, Entry.session_id == session_id, Entry.occurred_at, Entry.event_id
    )


async def readings_of_patient(session: AsyncSession, patient_id: str) -> list[Reading]:
    return await _ordered(
        session, Reading, Reading.patient_id == patient_id, Reading.recorded_at, Reading.event_id
    )


async def readings_of_session(session: AsyncSession, session_id: str) -> list[Reading]:
    return await _ordered(
        session, Reading, Reading.session_id == session_id, Reading.recorded_at, Reading.event_id
    )


def reading_fact(row: Reading) -> ReadingFact:
    return ReadingFact(row.event_id, row.session_id, as_utc(row.recorded_at), row.values)


async def sessions_of(session: AsyncSession, patient_id: str) -> list[SessionFact]:
    return await _ordered(
        session,
        SessionFact,
        SessionFact.patient_id == patient_id,
        SessionFact.starts_at,
        SessionFact.session_id,
    )


async def plans_of(session: AsyncSession, patient_id: str) -> list[PlanFact]:
    return await _ordered(
        session, PlanFact, PlanFact.patient_id == patient_id, PlanFact.created_at, PlanFact.plan_id
    )


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
