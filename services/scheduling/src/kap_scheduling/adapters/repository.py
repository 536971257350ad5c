"""Reading scheduling's state for the rules: queries, and rows turned into the
domain's values."""

from __future__ import annotations

from dataclasses import fields
from datetime import datetime, time

from sqlalchemy import text
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from kap_shared.db import is_postgres
from kap_shared.events.enums import ConsentScope, Phase, Role, Route, Severity

from ..domain import model
from .tables import (
    Clinician,
    Consent,
    Hold,
    IntegrationDeadline,
    Patient,
    Plan,
    Site,
    TreatmentSession,
)

# PostgreSQL advisory-lock key serializing bookings across instances (see `lock_bookings`).
_BOOKING_LOCK_KEY = 0x4B4150_5C4


async def lock_bookings(session: AsyncSession) -> None:
    """Serialize the check-then-write of bookings across service instances on
    PostgreSQL (held until the transaction ends). Within one process the HTTP
    layer's lock does the same for SQLite."""
    if is_postgres(session):
        await session.scalar(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _BOOKING_LOCK_KEY})


async def treatment_session(
    session: AsyncSession, session_id: str, *, for_update: bool = False
) -> TreatmentSession | None:
    """A session row; `for_update` locks it (PostgreSQL) until the transaction ends."""
    query = select(TreatmentSession).where(TreatmentSession.session_id == session_id)
    if for_update and is_postgres(session):
        query = query.with_for_update()
    return (await session.exec(query)).first()


async def latest_plan(session: AsyncSession, patient_id: str) -> Plan | None:
    result = await session.exec(
        select(Plan)
        .where(Plan.patient_id == patient_id)
        .order_by(col(Plan.created_at).desc(), col(Plan.plan_id))
    )
    return result.first()


async def patient_sessions(session: AsyncSession, patient_id: str) -> list[TreatmentSession]:
    result = await session.exec(
        select(TreatmentSession)
        .where(TreatmentSession.patient_id == patient_id)
        .order_by(col(TreatmentSession.starts_at), col(TreatmentSession.session_id))
    )
    return list(result)


async def site_sessions(
    session: AsyncSession, site_id: str, start: datetime, end: datetime
) -> list[TreatmentSession]:
    """A site's sessions starting in [start, end), in time order (the treatment floor)."""
    result = await session.exec(
        select(TreatmentSession)
        .where(TreatmentSession.site_id == site_id)
        .where(col(TreatmentSession.starts_at) >= start)
        .where(col(TreatmentSession.starts_at) < end)
        .order_by(col(TreatmentSession.starts_at), col(TreatmentSession.room_id))
    )
    return list(result)


async def overlapping_sessions(
    session: AsyncSession, starts_at: datetime, ends_at: datetime
) -> list[TreatmentSession]:
    result = await session.exec(
        select(TreatmentSession)
        .where(TreatmentSession.starts_at < ends_at)
        .where(TreatmentSession.ends_at > starts_at)
        .where(TreatmentSession.status != model.SessionStatus.CANCELLED.value)
    )
    return list(result)


async def consents_of(session: AsyncSession, patient_id: str) -> list[Consent]:
    result = await session.exec(select(Consent).where(Consent.patient_id == patient_id))
    return list(result)


async def open_holds(session: AsyncSession, patient_id: str) -> list[Hold]:
    result = await session.exec(
        select(Hold)
        .where(Hold.patient_id == patient_id)
        .where(Hold.status == model.HoldStatus.OPEN.value)
        .order_by(col(Hold.raised_at))
    )
    return list(result)


async def deadlines_of(session: AsyncSession, patient_id: str) -> list[IntegrationDeadline]:
    result = await session.exec(
        select(IntegrationDeadline)
        .where(IntegrationDeadline.patient_id == patient_id)
        .order_by(col(IntegrationDeadline.due_by))
    )
    return list(result)


async def site_info(session: AsyncSession, site_id: str) -> model.SiteInfo:
    site = await session.get(Site, site_id)
    if site is None:  # a plan for a site not (yet) in the directory
        return model.SiteInfo(site_id)
    return to_site(site)


async def patient(session: AsyncSession, patient_id: str) -> Patient | None:
    return await session.get(Patient, patient_id)


# -- rows -> domain values -------------------------------------------------------------


def to_site(site: Site) -> model.SiteInfo:
    return model.SiteInfo(site.site_id, site.timezone, site.rems_certified_until)


def to_staff(clinician: Clinician) -> model.StaffMember:
    hours = {
        day: (time.fromisoformat(window["start"]), time.fromisoformat(window["end"]))
        for day, window in (clinician.working_hours or {}).items()
    }
    return model.StaffMember(
        clinician.clinician_id, Role(clinician.role), tuple(clinician.sites), hours
    )


def to_plan(plan: Plan) -> model.PlanInfo:
    return model.PlanInfo(
        plan_id=plan.plan_id,
        patient_id=plan.patient_id,
        site_id=plan.site_id,
        status=model.PlanStatus(plan.status),
        route=Route(plan.route),
        protocol=plan.protocol,
        planned_dosing_sessions=plan.planned_dosing_sessions,
        phase=Phase(plan.phase) if plan.phase else None,
        prescriber_id=plan.prescriber_id,
        therapist_id=plan.therapist_id,
        suspended_at=plan.suspended_at,
        induction_review_due_at=plan.induction_review_due_at,
        induction_review_sessions=plan.induction_review_sessions,
    )


async def routes_of(session: AsyncSession, plan_ids: set[str]) -> dict[str, Route]:
    """The route of each plan (what a session's rules depend on)."""
    if not plan_ids:
        return {}
    result = await session.exec(select(Plan).where(col(Plan.plan_id).in_(plan_ids)))
    return {plan.plan_id: Route(plan.route) for plan in result}


# What a Slot copies from its row as it is (its codes become enums; the route is the plan's).
_SLOT_COLUMNS = {f.name for f in fields(model.Slot)} - {"phase", "status", "route"}


def to_slot(row: TreatmentSession, route: Route | None = None) -> model.Slot:
    return model.Slot(
        **row.model_dump(include=_SLOT_COLUMNS),
        phase=Phase(row.phase),
        status=model.SessionStatus(row.status),
        route=route,
    )


def to_consents(rows: list[Consent]) -> dict[ConsentScope, bool]:
    return {ConsentScope(row.scope): row.granted for row in rows}


def to_hold(row: Hold) -> model.Hold:
    return model.Hold(row.hold_id, row.source, row.value, Severity(row.severity), row.raised_at)


def to_deadline(row: IntegrationDeadline) -> model.Deadline:
    return model.Deadline(
        row.dosing_session_id, row.due_by, row.therapist_id, model.DeadlineStatus(row.status)
    )
