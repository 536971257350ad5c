"""HTTP API (CONTRACT section 4). Thin: authorize, translate, call a use case.

Who may do what (any other role: 403; a site not in the token: 403):

| endpoint | roles |
|---|---|
| `POST /sites`, `PATCH /sites/{id}`, `POST /sites/{id}/rooms`, `POST /clinicians` | admin, coordinator |
| `GET /patients/{id}/plan`, `GET /sessions/{id}`, `GET /sites/{id}/sessions` | prescriber, therapist, nurse, coordinator, admin |
| `POST /sessions`, `/sessions/{id}/reschedule` | coordinator, prescriber, therapist |
| `POST /sessions/{id}/cancel` | coordinator, prescriber, therapist, nurse |
| `POST /sessions/{id}/check-in`, `/complete` | nurse, prescriber, therapist |
| `POST /patients/{id}/holds/{hold_id}/clear` | prescriber |
"""  # noqa: E501 - a table

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Annotated, Any, TypeVar

from fastapi import APIRouter, Body, Depends, Query, Request
from pydantic import AwareDatetime

from kap_shared.auth import Principal, ensure_site, require_roles
from kap_shared.events.enums import Role
from kap_shared.http.dependencies import Uow
from kap_shared.http.errors import NotFound
from kap_shared.http.openapi import error_responses, keyed_post
from kap_shared.messaging.idempotency import HeldUntilCommit
from kap_shared.messaging.unit_of_work import UnitOfWork
from kap_shared.rules import SiteRules

from ..adapters import repository as repo
from ..adapters.tables import Plan, TreatmentSession
from ..domain.commands import (
    AddRoom,
    BookSession,
    CancelSession,
    CheckIn,
    ClearHold,
    CreateClinician,
    CreateSite,
    RescheduleSession,
    UpdateSite,
)
from ..domain.model import Clock
from ..domain.rules import SchedulingRules
from ..handlers import directory, holds, sessions, views
from .schemas import ClinicianView, HoldView, PlanView, RoomView, SessionView, SiteView

router = APIRouter()

P, T, N, C, A = Role.PRESCRIBER, Role.THERAPIST, Role.NURSE, Role.COORDINATOR, Role.ADMIN
DirectoryEditor = Annotated[Principal, Depends(require_roles(A, C))]
Viewer = Annotated[Principal, Depends(require_roles(P, T, N, C, A))]
Booker = Annotated[Principal, Depends(require_roles(C, P, T))]
Canceller = Annotated[Principal, Depends(require_roles(C, P, T, N))]
Bedside = Annotated[Principal, Depends(require_roles(N, P, T))]
Prescriber = Annotated[Principal, Depends(require_roles(P))]


def _now(request: Request) -> datetime:
    clock: Clock = request.app.state.clock
    return clock()


def _rules(request: Request) -> SiteRules[SchedulingRules]:
    rules: SiteRules[SchedulingRules] = request.app.state.rules
    return rules


def _lock(request: Request) -> HeldUntilCommit:
    # A keyed (Idempotency-Key) request commits after the route: hold the lock until then.
    lock: asyncio.Lock = request.app.state.write_lock
    return HeldUntilCommit(lock)


Now = Annotated[datetime, Depends(_now)]
Rules = Annotated[SiteRules[SchedulingRules], Depends(_rules)]
WriteLock = Annotated[HeldUntilCommit, Depends(_lock)]
_Route = TypeVar("_Route", bound=Callable[..., Any])


def _keyed_post(
    path: str, view: type[Any], tag: str, *errors: int, created: bool = False
) -> Callable[[_Route], _Route]:
    """A POST that takes an Idempotency-Key, in the API's section `tag`."""
    return keyed_post(router, path, view, *errors, created=created, tags=[tag])


def _session_action(action: str) -> Callable[[_Route], _Route]:
    """`POST /sessions/{session_id}/<action>`: 404 unknown session, 409 naming the rule."""
    return _keyed_post(f"/sessions/{{session_id}}/{action}", SessionView, "sessions", 404, 409)


# -- directory ------------------------------------------------------------------------------


@_keyed_post("/sites", SiteView, "directory", 409, created=True)
async def create_site(cmd: CreateSite, principal: DirectoryEditor, uow: Uow) -> SiteView:
    ensure_site(principal, cmd.site_id)
    async with uow:
        return SiteView.of(await directory.create_site(uow, cmd))


@router.patch(
    "/sites/{site_id}", responses=error_responses(404), response_model=SiteView, tags=["directory"]
)
async def update_site(
    site_id: str, cmd: UpdateSite, principal: DirectoryEditor, uow: Uow
) -> SiteView:
    """Renew or withdraw the site's esketamine REMS certification (SPR-CERT-1), rename it
    or change its time zone. Only the fields sent change."""
    ensure_site(principal, site_id)
    async with uow:
        return SiteView.of(await directory.update_site(uow, site_id, cmd))


@_keyed_post("/sites/{site_id}/rooms", RoomView, "directory", 404, 409, created=True)
async def add_room(site_id: str, cmd: AddRoom, principal: DirectoryEditor, uow: Uow) -> RoomView:
    ensure_site(principal, site_id)
    async with uow:
        return RoomView.of(await directory.add_room(uow, site_id, cmd))


@_keyed_post("/clinicians", ClinicianView, "directory", 409, created=True)
async def create_clinician(
    cmd: CreateClinician, principal: DirectoryEditor, uow: Uow
) -> ClinicianView:
    for site_id in cmd.sites:
        ensure_site(principal, site_id)
    async with uow:
        return ClinicianView.of(await directory.create_clinician(uow, cmd))


# -- plans and holds -----------------------------------------------------------------------


@router.get(
    "/patients/{patient_id}/plan",
    responses=error_responses(404),
    response_model=PlanView,
    tags=["plans"],
)
async def get_plan(
    patient_id: str, principal: Viewer, uow: Uow, rules: Rules, now: Now
) -> PlanView:
    """The patient's current plan: phase, status, sessions (past and booked), consents,
    open holds, integration deadlines and the coordinator's next action."""
    async with uow:
        plan = await repo.latest_plan(uow.session, patient_id)
        if plan is None:
            raise NotFound("plan for patient", patient_id)
        ensure_site(principal, plan.site_id)
        return PlanView.of(await views.plan_snapshot(uow, plan, rules, now))


@_keyed_post("/patients/{patient_id}/holds/{hold_id}/clear", HoldView, "plans", 404, 409)
async def clear_hold(
    patient_id: str,
    hold_id: str,
    cmd: ClearHold,
    principal: Prescriber,
    uow: Uow,
    now: Now,
    lock: WriteLock,
) -> HoldView:
    """A prescriber's risk assessment clears a safety hold (SCH-HOLD-1); dosing can be
    booked again once no hold is open. The reason stays in scheduling."""
    async with lock, uow:
        patient = await sessions.patient_or_404(uow, patient_id)
        ensure_site(principal, patient.site_id)
        return HoldView.of(await holds.clear_hold(uow, patient, hold_id, cmd, principal, now))


# -- sessions --------------------------------------------------------------------------------


async def _view(uow: UnitOfWork, row: TreatmentSession, rules: Rules) -> SessionView:
    plan = await uow.session.get(Plan, row.plan_id)
    if plan is None:
        raise NotFound("plan", row.plan_id)
    return SessionView.of(row, plan, rules.for_site(row.site_id))


@_keyed_post("/sessions", SessionView, "sessions", 409, created=True)
async def book_session(
    cmd: BookSession, principal: Booker, uow: Uow, rules: Rules, now: Now, lock: WriteLock
) -> SessionView:
    """Book a session; 409 naming the rule that forbids it. Emits SessionScheduled."""
    async with lock, uow:
        patient = await sessions.known_patient(uow, cmd.patient_id)
        ensure_site(principal, patient.site_id)
        row = await sessions.book_session(uow, patient, cmd, principal, rules, now)
        return await _view(uow, row, rules)


@router.get(
    "/sessions/{session_id}",
    responses=error_responses(404),
    response_model=SessionView,
    tags=["sessions"],
)
async def get_session(session_id: str, principal: Viewer, uow: Uow, rules: Rules) -> SessionView:
    async with uow:
        row = await sessions.get_session(uow, session_id, for_update=False)
        ensure_site(principal, row.site_id)
        return await _view(uow, row, rules)


@dataclass(frozen=True)
class _SessionWrite:
    """What every change to a booked session needs; `change` runs the shared steps."""

    uow: UnitOfWork
    rules: SiteRules[SchedulingRules]
    now: datetime
    lock: HeldUntilCommit

    async def change(
        self,
        session_id: str,
        principal: Principal,
        use_case: Callable[[TreatmentSession], Awaitable[TreatmentSession]],
    ) -> SessionView:
        """Load the session (404), check the caller's site (403), run the use case under
        the write lock and return the session as it now stands."""
        async with self.lock, self.uow:
            row = await sessions.get_session(self.uow, session_id)
            ensure_site(principal, row.site_id)
            return await _view(self.uow, await use_case(row), self.rules)


def _session_write(uow: Uow, rules: Rules, now: Now, lock: WriteLock) -> _SessionWrite:
    return _SessionWrite(uow, rules, now, lock)


SessionWrite = Annotated[_SessionWrite, Depends(_session_write)]


@_session_action("reschedule")
async def reschedule_session(
    session_id: str, cmd: RescheduleSession, principal: Booker, write: SessionWrite
) -> SessionView:
    """New times for a scheduled session; every booking rule is checked again. Emits
    SessionRescheduled with previous_starts_at."""
    return await write.change(
        session_id,
        principal,
        lambda row: sessions.reschedule_session(write.uow, row, cmd, write.rules, write.now),
    )


@_session_action("cancel")
async def cancel_session(
    session_id: str, cmd: CancelSession, principal: Canceller, write: SessionWrite
) -> SessionView:
    """Cancel with a coded reason (the optional note stays here). Emits SessionCancelled."""
    return await write.change(
        session_id,
        principal,
        lambda row: sessions.cancel_session(write.uow, row, cmd, principal, write.now),
    )


@_session_action("check-in")
async def check_in(
    session_id: str,
    principal: Bedside,
    write: SessionWrite,
    cmd: Annotated[CheckIn | None, Body()] = None,
) -> SessionView:
    """Check the patient in. Dosing sessions need `last_food_at`, `last_liquid_at` and
    `transport_arranged` (fasting and transport gates). Emits SessionCheckedIn, and
    PhaseAdvanced (preparation -> dosing) at the first dosing check-in."""
    return await write.change(
        session_id,
        principal,
        lambda row: sessions.check_in(
            write.uow, row, cmd or CheckIn(), principal, write.rules, write.now
        ),
    )


@_session_action("complete")
async def complete_session(session_id: str, principal: Bedside, write: SessionWrite) -> SessionView:
    """Complete a checked-in session (dosing: once monitoring has cleared discharge).
    Emits SessionCompleted; a dosing session starts its integration deadline (KAP-2),
    the last planned one advances the plan to integration."""
    return await write.change(
        session_id,
        principal,
        lambda row: sessions.complete_session(write.uow, row, principal, write.rules, write.now),
    )


@router.get(
    "/sites/{site_id}/sessions",
    response_model=list[SessionView],
    tags=["sessions"],
    # 403 (a site not in the token, or a role not allowed) and the rest come with the app.
    responses=error_responses(),
)
async def site_sessions(
    site_id: str,
    principal: Viewer,
    uow: Uow,
    rules: Rules,
    start: Annotated[AwareDatetime, Query(alias="from", description="ISO 8601 with offset")],
    end: Annotated[
        AwareDatetime | None, Query(alias="to", description="default: from + 1 day")
    ] = None,
) -> list[SessionView]:
    """A site's sessions starting in [from, to), in time order: the console's treatment
    floor asks for the site's day (its own midnight to midnight)."""
    ensure_site(principal, site_id)
    async with uow:
        day = await views.site_day(uow, site_id, start, end or start + timedelta(days=1))
        return [SessionView.of(row, plan, rules.for_site(site_id)) for row, plan in day]
