"""Reading records' tables."""

from __future__ import annotations

from datetime import datetime

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from kap_shared.events.envelope import as_utc

from ..domain.timeline import ReadingFact
from .tables import Entry, PlanFact, PmfForm, Reading, SessionFact


async def entries_of(session: AsyncSession, patient_id: str) -> list[Entry]:
    result = await session.exec(
        select(Entry)
        .where(Entry.patient_id == patient_id)
        .order_by(col(Entry.occurred_at), col(Entry.event_id))
    )
    return list(result)


async def session_entries(session: AsyncSession, session_id: str) -> list[Entry]:
    result = await session.exec(
        select(Entry)
        .where(Entry.session_id == session_id)
        .order_by(col(Entry.occurred_at), col(Entry.event_id))
    )
    return list(result)


async def readings_of_patient(session: AsyncSession, patient_id: str) -> list[Reading]:
    result = await session.exec(
        select(Reading)
        .where(Reading.patient_id == patient_id)
        .order_by(col(Reading.recorded_at), col(Reading.event_id))
    )
    return list(result)


async def readings_of_session(session: AsyncSession, session_id: str) -> list[Reading]:
    result = await session.exec(
        select(Reading)
        .where(Reading.session_id == session_id)
        .order_by(col(Reading.recorded_at), col(Reading.event_id))
    )
    return list(result)


def reading_fact(row: Reading) -> ReadingFact:
    return ReadingFact(row.event_id, row.session_id, as_utc(row.recorded_at), row.values)


async def sessions_of(session: AsyncSession, patient_id: str) -> list[SessionFact]:
    result = await session.exec(
        select(SessionFact)
        .where(SessionFact.patient_id == patient_id)
        .order_by(col(SessionFact.starts_at), col(SessionFact.session_id))
    )
    return list(result)


async def plans_of(session: AsyncSession, patient_id: str) -> list[PlanFact]:
    result = await session.exec(
        select(PlanFact)
        .where(PlanFact.patient_id == patient_id)
        .order_by(col(PlanFact.created_at), col(PlanFact.plan_id))
    )
    return list(result)


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
