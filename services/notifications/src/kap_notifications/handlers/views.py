"""Notifications' view of the clinic: care teams (from scheduling's events),
the recipient directory (PUT /recipients) and what routing needs from them, and the
read views its routes return (the escalation state of a site's alerts, `GET /alerts`)."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, time

from pydantic import BaseModel
from sqlalchemy import CompoundSelect, Result, bindparam, literal, union_all
from sqlmodel import col
from sqlmodel.ext.asyncio.session import AsyncSession

from kap_shared.events import (
    Envelope,
    IntegrationOverdue,
    SafetyConcernRaised,
    SessionCancelled,
    SessionRescheduled,
    SessionScheduled,
    TreatmentPlanCreated,
    VitalsAlert,
)
from kap_shared.events.enums import Channel, Role
from kap_shared.events.envelope import utc_now
from kap_shared.logging import get_logger
from kap_shared.projections import booked_session, upsert

from ..adapters.tables import (
    Alert,
    CareTeam,
    Notification,
    Recipient,
    RecipientSite,
    SessionTeam,
    select,
)
from ..domain.delivery import Profile, QuietHours
from ..domain.routing import Audience, Priority, RoutingContext, Rule, Team

log = get_logger(__name__)
_SESSION, _PLAN = "session", "plan"  # which team a row of `teams` is


# -- keeping the care-team view -----------------------------------------------------------


async def update_views(session: AsyncSession, event: Envelope) -> None:
    """Fold scheduling's events into the care-team view (before routing them)."""
    if isinstance(event, TreatmentPlanCreated):
        await _plan_created(session, event)
    elif isinstance(event, SessionScheduled):
        await _session_scheduled(session, event)
    elif isinstance(event, SessionRescheduled | SessionCancelled):
        row = await session.get(SessionTeam, event.data.session_id)
        if row is None:
            return  # booked before notifications kept sessions; the plan team still routes
        if isinstance(event, SessionRescheduled):
            row.starts_at, row.ends_at = event.data.starts_at, event.data.ends_at
        else:
            row.status = "cancelled"
        row.updated_at = utc_now()
        session.add(row)


async def _plan_created(session: AsyncSession, event: TreatmentPlanCreated) -> None:
    d = event.data
    values = {
        "site_id": event.site_id,
        "plan_id": d.plan_id,
        "prescriber_id": d.prescriber_id,
        "therapist_id": d.therapist_id,
        "updated_at": utc_now(),
    }
    await upsert(
        session, CareTeam, event.patient_id, values, when_new={"patient_id": event.patient_id}
    )


async def _session_scheduled(session: AsyncSession, event: SessionScheduled) -> None:
    values = {
        **booked_session(event),
        "room_id": event.data.room_id,
        "status": "scheduled",
        "updated_at": utc_now(),
    }
    await upsert(session, SessionTeam, event.data.session_id, values)


# -- what routing needs ----------------------------------------------------------------------


def _session_id(event: Envelope) -> str | None:
    """The session a routed event is about: the one it names, or the dosing session an
    IntegrationOverdue follows (plans, screenings and safety concerns name none)."""
    if isinstance(event, IntegrationOverdue):
        return event.data.dosing_session_id
    session_id: str | None = getattr(event.data, "session_id", None)
    return session_id


async def routing_context(session: AsyncSession, event: Envelope, rule: Rule) -> RoutingContext:
    """Load only what the rule's audience needs."""
    audience = rule.audience
    session_team = patient_team = None
    prescribers: tuple[str, ...] = ()
    nurses: tuple[str, ...] = ()
    safety = rule.priority.rank >= Priority.URGENT.rank
    if audience in (
        Audience.SESSION_TEAM,
        Audience.PATIENT_TEAM,
        Audience.OBSERVER,
        Audience.SITE_PRESCRIBERS_AND_THERAPIST,
    ):
        session_team, patient_team = await teams(session, _session_id(event), event.patient_id)
    if audience in (Audience.SITE_PRESCRIBERS, Audience.SITE_PRESCRIBERS_AND_THERAPIST) or (
        safety
        and audience in (Audience.SESSION_TEAM, Audience.PATIENT_TEAM)
        and session_team is None
        and patient_team is None
    ):
        prescribers = await site_prescribers(session, event.site_id)
    if audience is Audience.OBSERVER:
        nurses = await site_members(session, event.site_id, Role.NURSE)
    if audience is Audience.PMF_RESPONSIBLE:
        return await pmf_context(session, event)
    if isinstance(event, SafetyConcernRaised | VitalsAlert) and not (session_team or patient_team):
        log.warning("routing.care_team_unknown", falling_back_to="site_prescribers")
    return RoutingContext(session_team, patient_team, prescribers, nurses)


async def pmf_context(session: AsyncSession, event: Envelope) -> RoutingContext:
    """SPR-PMF-1: the form's session team (its prescriber) and the site's coordinators."""
    session_id = getattr(event.data, "session_id", None)
    session_team, patient_team = await teams(session, session_id, event.patient_id)
    coordinators = await site_members(session, event.site_id, Role.COORDINATOR)
    return RoutingContext(session_team, patient_team, site_coordinators=coordinators)


# The session's team and the plan's team in one statement, built once (binding its values
# at execution saves building and walking it for every alert). No session id: `= NULL`
# finds nothing.
_TEAMS: CompoundSelect[str, str | None, str | None] = union_all(
    select(literal(_PLAN), CareTeam.prescriber_id, CareTeam.therapist_id).where(
        CareTeam.patient_id == bindparam("patient_id")
    ),
    select(literal(_SESSION), SessionTeam.prescriber_id, SessionTeam.therapist_id).where(
        SessionTeam.session_id == bindparam("session_id")
    ),
)


async def teams(
    session: AsyncSession, session_id: str | None, patient_id: str
) -> tuple[Team | None, Team | None]:
    """The session's team and the patient's plan team, in one query: every statement is
    a round trip to the database driver, the larger part of a handler's time."""
    connection = await session.connection()
    result: Result[str, str | None, str | None] = await connection.execute(
        _TEAMS, {"patient_id": patient_id, "session_id": session_id}
    )
    found: dict[str, Team] = {
        kind: Team(prescriber, therapist) for kind, prescriber, therapist in result
    }
    return found.get(_SESSION), found.get(_PLAN)


async def site_members(session: AsyncSession, site_id: str, role: Role) -> tuple[str, ...]:
    """Recipients registered with `role` at the site (PUT /recipients)."""
    rows = await session.exec(
        select(Recipient.clinician_id)
        .join(RecipientSite, col(RecipientSite.clinician_id) == col(Recipient.clinician_id))
        .where(RecipientSite.site_id == site_id)
        .where(Recipient.role == role.value)
        .order_by(col(Recipient.clinician_id))
    )
    return tuple(rows)


async def site_prescribers(session: AsyncSession, site_id: str) -> tuple[str, ...]:
    """The site's prescribers: registered ones, else those of the site's known care teams."""
    registered = await site_members(session, site_id, Role.PRESCRIBER)
    if registered:
        return registered
    rows = await session.exec(
        select(CareTeam.prescriber_id)
        .where(CareTeam.site_id == site_id)
        .distinct()
        .order_by(col(CareTeam.prescriber_id))
    )
    return tuple(rows)


def profile_of(recipient: Recipient) -> Profile:
    quiet = None
    if recipient.quiet_start and recipient.quiet_end and recipient.quiet_timezone:
        quiet = QuietHours(
            time.fromisoformat(recipient.quiet_start),
            time.fromisoformat(recipient.quiet_end),
            recipient.quiet_timezone,
        )
    return Profile(
        clinician_id=recipient.clinician_id,
        has_email=bool(recipient.email),
        has_phone=bool(recipient.phone),
        channels={
            Priority(p): tuple(Channel(c) for c in channels)
            for p, channels in recipient.channels.items()
        },
        quiet_hours=quiet,
    )


_PROFILES = select(Recipient).where(
    col(Recipient.clinician_id).in_(bindparam("ids", expanding=True))
)


async def profiles(session: AsyncSession, recipient_ids: Iterable[str]) -> dict[str, Profile]:
    ids = list(dict.fromkeys(recipient_ids))
    if not ids:
        return {}
    rows = await session.exec(_PROFILES, params={"ids": ids})
    return {r.clinician_id: profile_of(r) for r in rows}


# -- read views ------------------------------------------------------------------------------


class AlertStateView(BaseModel):
    """An escalating alert as notifications sees it (id = the id of the event that raised
    it), with its in-app notifications: acknowledging any one of them acknowledges it."""

    alert_id: str
    event_type: str
    site_id: str
    patient_id: str
    priority: str
    title: str
    level: int
    status: str
    opened_at: datetime
    acknowledged_by: str | None
    acknowledged_at: datetime | None
    notification_ids: list[str]


async def alert_states(
    session: AsyncSession,
    site_id: str,
    *,
    patient_id: str | None = None,
    status: str | None = None,
    limit: int = 100,
) -> list[AlertStateView]:
    """A site's escalating alerts, newest first, each with its in-app notification ids."""
    query = select(Alert).where(Alert.site_id == site_id)
    if patient_id is not None:
        query = query.where(Alert.patient_id == patient_id)
    if status is not None:
        query = query.where(Alert.status == status)
    alerts = list(await session.exec(query.order_by(col(Alert.opened_at).desc()).limit(limit)))
    rows = await session.exec(
        select(Notification.alert_id, Notification.notification_id)
        .where(col(Notification.alert_id).in_([a.alert_id for a in alerts]))
        .where(Notification.channel == Channel.IN_APP.value)
        .order_by(col(Notification.created_at))
    )
    by_alert: dict[str, list[str]] = {}
    for alert_id, notification_id in rows:
        by_alert.setdefault(str(alert_id), []).append(notification_id)
    return [
        AlertStateView(
            **a.model_dump(include=set(AlertStateView.model_fields) - {"notification_ids"}),
            notification_ids=by_alert.get(a.alert_id, []),
        )
        for a in alerts
    ]
