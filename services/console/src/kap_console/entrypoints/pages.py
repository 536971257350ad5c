"""The console's pages (CONTRACT 6.3: `GET /` and its pages). Thin: check the site,
call a handler, render. Partials (`/floor/.../cards/...`, `/inbox/items`) are what
htmx fetches again when the live stream says something changed."""

from __future__ import annotations

from collections.abc import Awaitable
from dataclasses import dataclass
from datetime import date, datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse, Response

from kap_shared.events.enums import Role
from kap_shared.events.envelope import utc_now
from kap_shared.events.monitoring import VITAL_METRICS

from ..adapters.services import ServiceApi, ServiceError
from ..adapters.sessions import SignIn
from ..handlers import actions, lists
from ..handlers import floor as floor_handler
from ..handlers import journey as journey_handler
from .web import (
    Api,
    Csrf,
    LivePosition,
    Session,
    ensure_site_page,
    redirect,
    render,
    settings_of,
)

router = APIRouter(include_in_schema=False)


@router.get("/")
async def home(sign_in: Session) -> Response:
    sites = [s for s in sign_in.principal.sites if s != "*"]
    if sign_in.principal.role == Role.COORDINATOR and sites:
        return redirect(f"/coordinator/{sites[0]}")
    return redirect(f"/floor/{sites[0]}" if sites else "/inbox")


# -- 1. treatment floor -------------------------------------------------------------------


async def _board(
    request: Request, sign_in: SignIn, api: ServiceApi, site_id: str, day: date | None
) -> floor_handler.Floor:
    """The site's sessions on `day` (today when None), once the site check has passed."""
    ensure_site_page(sign_in.principal, site_id)
    zone = settings_of(request).floor_timezone
    return await floor_handler.floor(api, sign_in.principal, site_id, utc_now(), zone, day)


@router.get("/floor/{site_id}", response_class=HTMLResponse)
async def floor_page(
    site_id: str,
    request: Request,
    sign_in: Session,
    api: Api,
    since: LivePosition,
    day: date | None = None,
) -> Response:
    board = await _board(request, sign_in, api, site_id, day)
    return render(
        request, "floor.html", sign_in, floor=board, site_id=site_id, page="floor", live_since=since
    )


@router.get("/floor/{site_id}/board", response_class=HTMLResponse)
async def floor_board(
    site_id: str, request: Request, sign_in: Session, api: Api, day: date | None = None
) -> Response:
    board = await _board(request, sign_in, api, site_id, day)
    return render(request, "partials/board.html", sign_in, floor=board, site_id=site_id)


@dataclass(frozen=True)
class CardView:
    """One dosing card as a clinician asked for it (htmx swaps the card after an action)."""

    session_id: str
    request: Request
    sign_in: SignIn
    api: ServiceApi

    async def show(self, refusal: ServiceError | None = None) -> Response:
        principal = self.sign_in.principal
        card = await floor_handler.one_card(self.api, principal, self.session_id, utc_now())
        ensure_site_page(principal, card.site_id)
        return render(self.request, "partials/card.html", self.sign_in, card=card, refusal=refusal)

    async def after(self, action: Awaitable[object]) -> Response:
        """Attempt an action on the card's session, then the card with any refusal."""
        return await self.show(await _attempt(action))


def card_view(session_id: str, request: Request, sign_in: Session, api: Api) -> CardView:
    return CardView(session_id, request, sign_in, api)


Card = Annotated[CardView, Depends(card_view)]


@router.get("/cards/{session_id}", response_class=HTMLResponse)
async def card_partial(card: Card) -> Response:
    return await card.show()


@router.post("/cards/{session_id}/acknowledge", dependencies=[Csrf])
async def acknowledge_alert(card: Card, notification_id: Annotated[str, Form()]) -> Response:
    return await card.after(actions.acknowledge(card.api, notification_id))


@router.post("/cards/{session_id}/alerts/{alert_id}/resolve", dependencies=[Csrf])
async def resolve_alert(card: Card, alert_id: str, reason: Annotated[str, Form()]) -> Response:
    return await card.after(actions.resolve_alert(card.api, card.session_id, alert_id, reason))


@router.post("/cards/{session_id}/safety-concerns/{concern_id}/resolve", dependencies=[Csrf])
async def resolve_concern(
    card: Card, concern_id: str, decision: Annotated[str, Form()]
) -> Response:
    return await card.after(
        actions.resolve_concern(card.api, card.session_id, concern_id, decision)
    )


@router.post("/cards/{session_id}/discharge", dependencies=[Csrf])
async def discharge(card: Card) -> Response:
    return await card.after(actions.discharge(card.api, card.session_id))


@router.post("/cards/{session_id}/sign-discharge", dependencies=[Csrf])
async def sign_discharge(card: Card) -> Response:
    """The prescriber's stability assessment (coded answers only), then the discharge."""
    form = await card.request.form()
    assessment: dict[str, object] = {
        name: form.get(name) == "yes" for name, _ in actions.ASSESSMENT_ANSWERS
    }
    escort = _yes_no(str(form.get("escort_confirmed", "")))
    if escort is not None:
        assessment["escort_confirmed"] = escort
    for name in ("aldrete_score", "aldrete_pre_dose", "ready_to_leave_minutes"):
        value = str(form.get(name, "")).strip()
        if value.isdigit():
            assessment[name] = int(value)
    return await card.after(actions.sign_discharge(card.api, card.session_id, assessment))


async def _attempt(action: Awaitable[object]) -> ServiceError | None:
    """Run an action; a refusal is returned to be explained on the page."""
    try:
        await action
    except ServiceError as exc:
        if exc.status in (401, 403):
            raise
        return exc
    return None


# -- 2. patient journey ---------------------------------------------------------------------


@router.get("/patients/{patient_id}", response_class=HTMLResponse)
async def journey_page(patient_id: str, request: Request, sign_in: Session, api: Api) -> Response:
    journey = await journey_handler.journey(api, sign_in.principal, patient_id)
    if journey.plan is None and journey.patient is None:
        return render(
            request,
            "error.html",
            sign_in,
            404,
            title="Patient not found",
            message="No plan or intake record is visible to you for this patient.",
        )
    site = (journey.plan or journey.patient or {}).get("site_id")
    if isinstance(site, str):
        ensure_site_page(sign_in.principal, site)
    return render(request, "journey.html", sign_in, journey=journey, page="journey")


# -- 3. inbox -------------------------------------------------------------------------------


@router.get("/inbox", response_class=HTMLResponse)
async def inbox_page(request: Request, sign_in: Session, api: Api, since: LivePosition) -> Response:
    items = await lists.inbox(api)
    return render(request, "inbox.html", sign_in, items=items, page="inbox", live_since=since)


@router.get("/inbox/items", response_class=HTMLResponse)
async def inbox_items(request: Request, sign_in: Session, api: Api) -> Response:
    items = await lists.inbox(api)
    return render(request, "partials/inbox_items.html", sign_in, items=items)


@router.post("/inbox/{notification_id}/ack", dependencies=[Csrf])
async def inbox_ack(notification_id: str, request: Request, sign_in: Session, api: Api) -> Response:
    refusal = await _attempt(actions.acknowledge(api, notification_id))
    items = await lists.inbox(api)
    return render(request, "partials/inbox_items.html", sign_in, items=items, refusal=refusal)


# -- 4. schedule ----------------------------------------------------------------------------


def _day(raw: str | None) -> date | None:
    try:
        return date.fromisoformat(raw) if raw else None
    except ValueError:
        return None


async def _schedule(
    request: Request, sign_in: SignIn, api: ServiceApi, site_id: str, /, **extra: object
) -> Response:
    """The schedule page; a `refusal` among `extra` is explained and sets the status."""
    refusal = extra.get("refusal")
    status = refusal.status if isinstance(refusal, ServiceError) else 200
    board = await _board(request, sign_in, api, site_id, _day(request.query_params.get("day")))
    return render(
        request,
        "schedule.html",
        sign_in,
        status,
        floor=board,
        site_id=site_id,
        page="schedule",
        **extra,
    )


@dataclass(frozen=True)
class ScheduledSession:
    """A session a nurse acts on from its site's schedule (check-in, dose, vitals,
    completion); the schedule page answers, with any refusal explained."""

    session_id: str
    site_id: str
    request: Request
    sign_in: SignIn
    api: ServiceApi

    async def after(self, action: Awaitable[object]) -> Response:
        """Attempt an action on the session, then the schedule with any refusal."""
        return await self.show(await _attempt(action))

    async def show(self, refusal: ServiceError | None) -> Response:
        return await _schedule(
            self.request,
            self.sign_in,
            self.api,
            self.site_id,
            refusal=refusal,
            acted_on=self.session_id,
        )


def scheduled_session(
    session_id: str, site_id: Annotated[str, Form()], request: Request, sign_in: Session, api: Api
) -> ScheduledSession:
    ensure_site_page(sign_in.principal, site_id)  # before anything is done at the site
    return ScheduledSession(session_id, site_id, request, sign_in, api)


OnSchedule = Annotated[ScheduledSession, Depends(scheduled_session)]


@router.get("/schedule/{site_id}", response_class=HTMLResponse)
async def schedule_page(site_id: str, request: Request, sign_in: Session, api: Api) -> Response:
    return await _schedule(request, sign_in, api, site_id)


@router.post("/schedule/{site_id}/book", dependencies=[Csrf])
async def book(
    site_id: str,
    request: Request,
    sign_in: Session,
    api: Api,
    patient_id: Annotated[str, Form()],
    phase: Annotated[str, Form()],
    day: Annotated[str, Form()],
    start: Annotated[str, Form()],
    minutes: Annotated[int, Form(ge=15, le=600)],
    room_id: Annotated[str, Form()],
    therapist_id: Annotated[str, Form()] = "",
    prescriber_id: Annotated[str, Form()] = "",
) -> Response:
    ensure_site_page(sign_in.principal, site_id)
    tz = settings_of(request).floor_timezone
    outcome: dict[str, object] = {}
    try:
        booked = await actions.book(
            api,
            patient_id=patient_id.strip(),
            phase=phase,
            starts_at=actions.local_time(day, start, tz),
            minutes=minutes,
            room_id=room_id.strip(),
            therapist_id=therapist_id.strip() or None,
            prescriber_id=prescriber_id.strip() or None,
        )
        outcome["booked"] = booked
    except ServiceError as exc:
        if exc.status in (401, 403):
            raise
        outcome["refusal"] = exc
    except ValueError:
        outcome["refusal"] = ServiceError(
            "console", 422, "invalid_time", "the day or start time is not a valid date/time"
        )
    return await _schedule(request, sign_in, api, site_id, **outcome)


@router.post("/sessions/{session_id}/check-in", dependencies=[Csrf])
async def check_in(
    session: OnSchedule,
    # A field left empty ("not asked") is None; "yes" / "no" are True / False.
    hours_since_food: Annotated[float | None, Form()] = None,
    hours_since_liquid: Annotated[float | None, Form()] = None,
    transport: Annotated[bool | None, Form()] = None,
    escort: Annotated[bool | None, Form()] = None,
) -> Response:
    asked = transport is not None or escort is not None
    return await session.after(
        actions.check_in(
            session.api,
            session.session_id,
            utc_now(),
            hours_since_food=hours_since_food,
            hours_since_liquid=hours_since_liquid,
            # The contract's single attestation covers transport home or an escort.
            transport_arranged=(transport is True or escort is True) if asked else None,
        )
    )


def _clock(value: str, request: Request) -> datetime | None:
    """A charted clock time (HH:MM) in the floor's zone, or None when left empty."""
    value = value.strip()
    if not value:
        return None
    return actions.charted_time(value, utc_now(), settings_of(request).floor_timezone)


def _yes_no(value: str) -> bool | None:
    return {"yes": True, "no": False}.get(value)


@router.post("/sessions/{session_id}/dose", dependencies=[Csrf])
async def dose(
    session: OnSchedule,
    route: Annotated[str, Form()],
    agent: Annotated[str, Form()],
    dose_mg: Annotated[float, Form(gt=0)],
    device_number: Annotated[str, Form()] = "",
    administered_at: Annotated[str, Form()] = "",
    dosing_ended_at: Annotated[str, Form()] = "",
    lot_number: Annotated[str, Form()] = "",
    medications_asked: Annotated[str, Form()] = "",
    concomitant_medications: Annotated[list[str] | None, Form()] = None,
    nasal_medication: Annotated[str, Form()] = "",
    nasal_medication_at: Annotated[str, Form()] = "",
) -> Response:
    request = session.request
    try:
        body = actions.dose_body(
            route=route,
            agent=agent,
            dose_mg=dose_mg,
            device_number=int(device_number) if device_number.strip() else None,
            administered_at=_clock(administered_at, request),
            dosing_ended_at=_clock(dosing_ended_at, request),
            lot_number=lot_number.strip() or None,
            # SPR-PRE-7: ticked classes, or [] once the nurse says she asked.
            concomitant_medications=list(concomitant_medications or [])
            if medications_asked == "yes" or concomitant_medications
            else None,
            nasal_medication_used=_yes_no(nasal_medication),
            nasal_medication_at=_clock(nasal_medication_at, request),
        )
    except ValueError:
        refusal: ServiceError | None = ServiceError(
            "console", 422, "invalid_time", "a time or device number is not valid"
        )
    else:
        refusal = await _attempt(actions.record_dose(session.api, session.session_id, body))
    return await session.show(refusal)


# What the nurse charts: the reading's metrics, and the optional CADSS total.
VITAL_FIELDS = (*VITAL_METRICS, "cadss_total")


@router.post("/sessions/{session_id}/vitals", dependencies=[Csrf])
async def vitals(session: OnSchedule) -> Response:
    form = await session.request.form()
    body: dict[str, object] = {}
    for name in VITAL_FIELDS:
        value = str(form.get(name, "")).strip()
        if value:
            body[name] = float(value) if name == "spo2" else int(float(value))
    dissociation = str(form.get("dissociation", "")).strip()
    if dissociation:  # SPR-GOAL: the coded assessment, none | mild | moderate | severe
        body["dissociation"] = dissociation
    return await session.after(actions.record_vitals(session.api, session.session_id, body))


@router.post("/sessions/{session_id}/complete", dependencies=[Csrf])
async def complete(session: OnSchedule) -> Response:
    return await session.after(actions.complete(session.api, session.session_id))


# -- 5. coordinator -------------------------------------------------------------------------


@router.get("/coordinator/{site_id}", response_class=HTMLResponse)
async def coordinator_page(site_id: str, request: Request, sign_in: Session, api: Api) -> Response:
    ensure_site_page(sign_in.principal, site_id)
    worklist = await lists.coordinator(api, site_id)
    return render(
        request, "coordinator.html", sign_in, work=worklist, site_id=site_id, page="coordinator"
    )
