"""HTTP API (CONTRACT section 4). Thin: authorize, translate, call a use case.

| method and path | who |
|---|---|
| `PUT /recipients/{clinician_id}` | admin/coordinator of the entry's sites, or the clinician |
| `GET /recipients/{clinician_id}` | the clinician, or admin/coordinator of one of its sites |
| `PUT /sites/{site_id}/escalation` | admin/coordinator of the site |
| `GET /sites/{site_id}/escalation` | any clinician of the site |
| `GET /inbox` | any clinician (their own notifications, at their sites) |
| `GET /inbox/stream` | any clinician (Server-Sent Events) |
| `POST /notifications/{id}/ack` | the recipient, or any clinician of the notification's site |
| `GET /patients/{id}/measurement-schedule` | any clinician of the patient's site |

Devices (role `device`) get 403 everywhere.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Header, Query, Request, Response
from fastapi.sse import ServerSentEvent
from pydantic import BaseModel

from kap_shared.auth import Principal, ensure_site, require_roles
from kap_shared.events.enums import Channel, Role
from kap_shared.events.envelope import utc_now
from kap_shared.http.errors import NotFound
from kap_shared.http.idempotency import IdempotencyKey
from kap_shared.http.openapi import error_responses
from kap_shared.http.streams import EVENT_STREAM_RESPONSES, EventStream, event_stream
from kap_shared.messaging.unit_of_work import UnitOfWork
from kap_shared.service.runtime import ServiceRuntime

from ..adapters.hub import Closed, InboxHub
from ..adapters.metrics import NotificationMetrics
from ..adapters.tables import EscalationPolicy, Recipient
from ..config import NotificationsSettings
from ..domain.commands import PutEscalation, PutRecipient
from ..handlers import directory, inbox, measures, views
from ..handlers.acknowledge import acknowledge
from ..handlers.inbox import NotificationView

router = APIRouter(tags=["notifications"])

CLINICAL = (Role.PRESCRIBER, Role.THERAPIST, Role.NURSE, Role.COORDINATOR, Role.ADMIN)
Clinician = Annotated[Principal, Depends(require_roles(*CLINICAL))]
Manager = Annotated[Principal, Depends(require_roles(Role.ADMIN, Role.COORDINATOR))]


def _runtime(request: Request) -> ServiceRuntime:
    runtime: ServiceRuntime = request.app.state.runtime
    return runtime


def _uow(request: Request) -> UnitOfWork:
    return _runtime(request).unit_of_work()


Uow = Annotated[UnitOfWork, Depends(_uow)]


# -- recipients ---------------------------------------------------------------------------------


class QuietHoursView(BaseModel):
    start: str
    end: str
    timezone: str


class RecipientView(BaseModel):
    clinician_id: str
    role: str
    sites: list[str]
    email: str | None
    phone: str | None
    channels: dict[str, list[str]]
    quiet_hours: QuietHoursView | None
    updated_by: str
    updated_at: datetime


def _recipient_view(recipient: Recipient, sites: list[str]) -> RecipientView:
    quiet = None
    if recipient.quiet_start and recipient.quiet_end and recipient.quiet_timezone:
        quiet = QuietHoursView(
            start=recipient.quiet_start, end=recipient.quiet_end, timezone=recipient.quiet_timezone
        )
    same_names = recipient.model_dump(include=set(RecipientView.model_fields))
    return RecipientView(**same_names, sites=sites, quiet_hours=quiet)


@router.put(
    "/recipients/{clinician_id}",
    response_model=RecipientView,
    summary="Contact points, channel preferences, quiet hours, role and sites of a clinician",
    responses={201: {"description": "created"}, 200: {"description": "replaced"}},
)
async def put_recipient(
    clinician_id: str, cmd: PutRecipient, principal: Clinician, uow: Uow, response: Response
) -> RecipientView:
    async with uow:
        recipient, sites, created = await directory.put_recipient(uow, clinician_id, cmd, principal)
        view = _recipient_view(recipient, sites)
    response.status_code = 201 if created else 200
    return view


@router.get(
    "/recipients/{clinician_id}", responses=error_responses(404), response_model=RecipientView
)
async def get_recipient(clinician_id: str, principal: Clinician, uow: Uow) -> RecipientView:
    async with uow:
        recipient, sites = await directory.get_recipient(uow.session, clinician_id, principal)
        return _recipient_view(recipient, sites)


# -- escalation ---------------------------------------------------------------------------------


class LevelView(BaseModel):
    after_seconds: int
    recipient_ids: list[str]


class EscalationView(BaseModel):
    site_id: str
    levels: list[LevelView]
    updated_by: str | None
    updated_at: datetime | None


def _escalation_view(site_id: str, policy: EscalationPolicy | None) -> EscalationView:
    if policy is None:
        return EscalationView(site_id=site_id, levels=[], updated_by=None, updated_at=None)
    return EscalationView(
        site_id=site_id,
        levels=[LevelView.model_validate(level) for level in policy.levels],
        updated_by=policy.updated_by,
        updated_at=policy.updated_at,
    )


@router.put(
    "/sites/{site_id}/escalation",
    response_model=EscalationView,
    summary="Escalation levels of a site: [{after_seconds, recipient_ids[]}]",
)
async def put_escalation(
    site_id: str, cmd: PutEscalation, principal: Manager, uow: Uow
) -> EscalationView:
    ensure_site(principal, site_id)
    async with uow:
        policy = await directory.put_escalation(uow, site_id, cmd, principal)
        return _escalation_view(site_id, policy)


@router.get("/sites/{site_id}/escalation", response_model=EscalationView)
async def get_escalation(site_id: str, principal: Clinician, uow: Uow) -> EscalationView:
    ensure_site(principal, site_id)
    async with uow:
        policy = await uow.session.get(EscalationPolicy, site_id)
        return _escalation_view(site_id, policy)


# -- inbox ----------------------------------------------------------------------------------------


@router.get(
    "/inbox",
    response_model=list[NotificationView],
    summary="The caller's notifications, newest first",
    description=(
        "In-app notifications by default; `channel=email` / `channel=sms` (repeatable) "
        "show the delivery records of those channels (status, attempts, last error code)."
    ),
)
async def get_inbox(
    principal: Clinician,
    uow: Uow,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    channel: Annotated[list[Channel] | None, Query()] = None,
    acknowledged: Annotated[bool | None, Query()] = None,
) -> list[NotificationView]:
    channels = [c.value for c in channel] if channel else [Channel.IN_APP.value]
    async with uow:
        rows = await inbox.inbox(
            uow.session, principal, channels=channels, limit=limit, acknowledged=acknowledged
        )
        return [inbox.view(n) for n in rows]


@router.get(
    "/inbox/stream",
    response_class=EventStream,
    responses=EVENT_STREAM_RESPONSES,
    summary="Server-Sent Events: the caller's new in-app notifications, live",
    description=(
        "Authenticate with the same `Authorization: Bearer` token. Each new notification "
        "is an `event: notification` whose `id` is the notification id and whose `data` is "
        "the inbox item. Comment lines (`: keep-alive`) arrive while idle. After a "
        "disconnect, send `Last-Event-ID` to replay what was missed."
    ),
)
async def inbox_stream(
    principal: Clinician,
    request: Request,
    last_event_id: Annotated[str | None, Header(alias="Last-Event-ID")] = None,
) -> EventStream:
    return event_stream(_inbox_events(principal, request, last_event_id))


async def _inbox_events(
    principal: Principal, request: Request, last_event_id: str | None
) -> AsyncIterator[ServerSentEvent]:
    runtime = _runtime(request)
    settings: NotificationsSettings = runtime.settings  # type: ignore[assignment]
    hub: InboxHub = request.app.state.inbox_hub
    subscription = hub.subscribe(principal.sub)
    sent: set[str] = set()
    try:
        yield ServerSentEvent(comment="connected", retry=3000)
        if last_event_id:
            async with runtime.sessions() as session:
                missed = await inbox.created_after(session, principal, last_event_id)
            for row in missed:
                sent.add(row.notification_id)
                yield _sse(inbox.view(row).model_dump(mode="json"), row.notification_id)
        while True:
            try:
                item = await subscription.next(settings.sse_keepalive_seconds)
            except Closed:
                return
            if item is None:
                yield ServerSentEvent(comment="keep-alive")
            elif item.notification_id not in sent and principal.can_access_site(item.site_id):
                sent.add(item.notification_id)
                yield _sse(item.payload, item.notification_id)
    finally:
        hub.unsubscribe(subscription)


def _sse(payload: dict[str, Any], notification_id: str) -> ServerSentEvent:
    return ServerSentEvent(event="notification", id=notification_id, data=payload)


# -- acknowledgement --------------------------------------------------------------------------


class Acknowledgement(BaseModel):
    notification: NotificationView
    # False when the notification had been acknowledged before (nothing new emitted).
    acknowledged_now: bool
    state: Literal["acknowledged"] = "acknowledged"


@router.post(
    "/notifications/{notification_id}/ack",
    dependencies=[IdempotencyKey],
    responses=error_responses(404),
    response_model=Acknowledgement,
    summary="Acknowledge a notification; emits AlertAcknowledged and stops its escalation",
)
async def ack(
    notification_id: str, principal: Clinician, uow: Uow, request: Request
) -> Acknowledgement:
    async with uow:
        notification, acknowledged_now = await acknowledge(
            uow, notification_id, principal, utc_now()
        )
        view = inbox.view(notification)
    metrics: NotificationMetrics | None = getattr(request.app.state, "notification_metrics", None)
    if acknowledged_now and metrics:
        metrics.acknowledgements.inc()
    return Acknowledgement(notification=view, acknowledged_now=acknowledged_now)


# -- measurement schedule (rulebook 3.2) -----------------------------------------------------


@router.get(
    "/patients/{patient_id}/measurement-schedule",
    response_model=measures.MeasurementScheduleView,
    summary="When the patient's PHQ-9 / GAD-7 / PCL-5 are due; overdue before the next dosing",
    responses=error_responses(404),
)
async def measurement_schedule(
    patient_id: str, principal: Clinician, uow: Uow, request: Request
) -> measures.MeasurementScheduleView:
    now = request.app.state.notifier.clock()  # the service's clock (the timers' too)
    async with uow:
        view = await measures.schedule_view(uow.session, patient_id, now)
    if view is None:
        raise NotFound("measurement schedule of patient", patient_id)
    ensure_site(principal, view.site_id)
    return view


# -- alerts (escalation state) --------------------------------------------------------------------


@router.get(
    "/alerts",
    response_model=list[views.AlertStateView],
    summary="A site's escalating alerts and their escalation state, newest first",
    description="For the care-team console: `status` open | acknowledged | resolved.",
)
async def list_alerts(
    principal: Clinician,
    uow: Uow,
    site_id: str,
    patient_id: str | None = None,
    status: str | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> list[views.AlertStateView]:
    ensure_site(principal, site_id)
    async with uow:
        return await views.alert_states(
            uow.session, site_id, patient_id=patient_id, status=status, limit=limit
        )
