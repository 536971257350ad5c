"""The measurement schedule (rulebook 3.2, issue 11): when a patient's next PHQ-9 (and
GAD-7 / PCL-5 where used) is due, reset by each treatment session (as MoodMonitor
does) and by each measure of that instrument; a durable timer per patient and
instrument (`measure-due:<patient>:<instrument>`) tells the clinician who sees the
patient next. `schedule_view` answers GET /patients/{id}/measurement-schedule: which
measure is overdue, and whether it will be before the next dosing session."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from pydantic import BaseModel
from sqlmodel import col
from sqlmodel.ext.asyncio.session import AsyncSession

from kap_shared.events import Envelope
from kap_shared.events.enums import Instrument, Phase
from kap_shared.events.envelope import as_utc
from kap_shared.messaging import timers
from kap_shared.messaging.unit_of_work import UnitOfWork
from kap_shared.projections import upsert

from ..adapters.tables import CareTeam, MeasureSchedule, SessionTeam, select
from ..domain.rules import NotificationRules
from .notify import Source

MEASURE_TIMER = "measure-due"


def timer_key(patient_id: str, instrument: str) -> str:
    return f"{MEASURE_TIMER}:{patient_id}:{instrument}"


async def reset(
    session: AsyncSession,
    event: Envelope,
    instruments: list[Instrument],
    rules: NotificationRules,
    now: datetime,
) -> None:
    """The clock of each instrument starts again at `now` (part of the caller's unit of work)."""
    for instrument in instruments:
        days = rules.measure_interval_days.get(instrument)
        if days is None:
            continue
        due = now + timedelta(days=days)
        first = {
            "patient_id": event.patient_id,
            "instrument": instrument.value,
            "site_id": event.site_id,
            "correlation_id": event.correlation_id,
        }
        key = (event.patient_id, instrument.value)
        await upsert(
            session, MeasureSchedule, key, {"due_at": due, "reset_at": now}, when_new=first
        )
        await timers.schedule(
            session,
            kind=MEASURE_TIMER,
            key=timer_key(event.patient_id, instrument.value),
            due_at=due,
            payload={"patient_id": event.patient_id, "instrument": instrument.value},
        )


async def used_instruments(session: AsyncSession, patient_id: str) -> list[Instrument]:
    rows = await session.exec(
        select(MeasureSchedule.instrument).where(MeasureSchedule.patient_id == patient_id)
    )
    return [Instrument(i) for i in rows]


async def next_session(session: AsyncSession, patient_id: str, now: datetime) -> SessionTeam | None:
    """The patient's next booked session (not cancelled), if any."""
    rows = await session.exec(
        select(SessionTeam)
        .where(SessionTeam.patient_id == patient_id)
        .where(SessionTeam.status == "scheduled")
        .where(col(SessionTeam.starts_at) > now)
        .order_by(col(SessionTeam.starts_at))
    )
    return rows.first()


async def next_clinician(session: AsyncSession, patient_id: str, now: datetime) -> str | None:
    """Who sees the patient next: the therapist of the next session (present at every
    KAP session), else the plan's therapist."""
    upcoming = await next_session(session, patient_id, now)
    if upcoming is not None:
        return upcoming.therapist_id
    team = await session.get(CareTeam, patient_id)
    return team.therapist_id if team else None


@dataclass(frozen=True)
class Due:
    row: MeasureSchedule
    source: Source
    recipient_id: str | None


async def due(job: timers.ScheduledJob, uow: UnitOfWork, now: datetime) -> Due | None:
    """Timer: the measure is due; None when it was reset meanwhile."""
    key = (str(job.payload["patient_id"]), str(job.payload["instrument"]))
    row = await uow.session.get(MeasureSchedule, key)
    if row is None or as_utc(row.due_at) > now:
        return None
    source = Source(
        job.job_id, f"timer:{job.kind}", row.site_id, row.patient_id, row.correlation_id
    )
    return Due(row, source, await next_clinician(uow.session, row.patient_id, now))


def due_text(row: MeasureSchedule, interval_days: float | None) -> tuple[str, str]:
    every = f" (every {interval_days:g} days, rulebook 3.2)" if interval_days else ""
    return (
        "Measure due",
        f"Patient {row.patient_id}: {row.instrument} is due{every}. "
        "Administer it at the next contact.",
    )


# -- the view ---------------------------------------------------------------------------------


class MeasureDueView(BaseModel):
    instrument: str
    due_at: datetime
    overdue: bool  # due now
    # Due at or before the start of the patient's next dosing session (rulebook 3.2:
    # measure before each dosing session).
    due_before_next_dosing: bool


class MeasurementScheduleView(BaseModel):
    patient_id: str
    site_id: str
    next_dosing_session_id: str | None
    measures: list[MeasureDueView]


async def schedule_view(
    session: AsyncSession, patient_id: str, now: datetime
) -> MeasurementScheduleView | None:
    rows = list(
        await session.exec(
            select(MeasureSchedule)
            .where(MeasureSchedule.patient_id == patient_id)
            .order_by(col(MeasureSchedule.instrument))
        )
    )
    if not rows:
        return None
    dosing = (
        await session.exec(
            select(SessionTeam)
            .where(SessionTeam.patient_id == patient_id)
            .where(SessionTeam.status == "scheduled")
            .where(SessionTeam.phase == Phase.DOSING.value)
            .where(col(SessionTeam.starts_at) > now)
            .order_by(col(SessionTeam.starts_at))
        )
    ).first()
    return MeasurementScheduleView(
        patient_id=patient_id,
        site_id=rows[0].site_id,
        next_dosing_session_id=dosing.session_id if dosing else None,
        measures=[
            MeasureDueView(
                instrument=r.instrument,
                due_at=as_utc(r.due_at),
                overdue=as_utc(r.due_at) <= now,
                due_before_next_dosing=dosing is not None
                and as_utc(r.due_at) <= as_utc(dosing.starts_at),
            )
            for r in rows
        ],
    )
