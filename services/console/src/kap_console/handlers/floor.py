"""The treatment floor: a site's sessions today, one card each, assembled from
scheduling (booking, room), monitoring (window) and notifications (escalations),
with the patient's display name from intake for roles allowed to read it (that
read is audited by intake). Calls run concurrently; a service that fails shows
as a warning on the board, not an error page."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from kap_shared.auth import Principal
from kap_shared.events.enums import Role

from ..adapters.services import ServiceApi, ServiceError, ServiceUnavailable
from ..domain.floor import Card, build_card

# Roles that may see a patient's name on the floor (intake's GET /patients/{id} allows
# clinical roles; the console asks only for those who treat at the bedside).
NAME_READERS = frozenset({Role.PRESCRIBER, Role.NURSE, Role.THERAPIST, Role.COORDINATOR})


@dataclass
class Floor:
    site_id: str
    day: str
    cards: list[Card]
    warnings: list[str] = field(default_factory=list)


def day_bounds(now: datetime, tz: str | None, day: date | None = None) -> tuple[datetime, datetime]:
    """The site's calendar day (today unless `day` is given) as [start, end)."""
    zone = ZoneInfo(tz) if tz else ZoneInfo("UTC")
    local = day or now.astimezone(zone).date()
    start = datetime.combine(local, time.min, tzinfo=zone)
    return start, start + timedelta(days=1)


async def _optional(coro: Any, warnings: list[str], what: str) -> Any:
    try:
        return await coro
    except ServiceError as exc:
        if exc.status == 404:
            return None
        warnings.append(f"{what}: {exc.service} answered {exc.status} {exc.code}")
    except ServiceUnavailable as exc:
        warnings.append(f"{what}: {exc.service} is unreachable")
    return None


async def display_name(api: ServiceApi, principal: Principal, patient_id: str) -> str | None:
    if principal.role not in NAME_READERS:
        return None
    try:
        patient = await api.get("intake", f"/patients/{patient_id}")
    except (ServiceError, ServiceUnavailable):
        return None
    return f"{patient['given_name']} {patient['family_name'][:1]}."


async def card(
    api: ServiceApi,
    principal: Principal,
    booking: dict[str, Any],
    now: datetime,
    warnings: list[str],
    escalations: list[dict[str, Any]] | None = None,
) -> Card:
    """One card; `escalations` given by the board (one call for the whole site)."""
    session_id, patient_id = booking["session_id"], booking["patient_id"]
    if escalations is None:
        escalations = (
            await _optional(
                api.get(
                    "notifications", "/alerts", site_id=booking["site_id"], patient_id=patient_id
                ),
                warnings,
                "escalations",
            )
            or []
        )
    window, name = await asyncio.gather(
        _optional(api.get("monitoring", f"/sessions/{session_id}"), warnings, "monitoring"),
        display_name(api, principal, patient_id),
    )
    return build_card(booking, window, escalations, now, name)


async def floor(
    api: ServiceApi,
    principal: Principal,
    site_id: str,
    now: datetime,
    tz: str | None,
    day: date | None = None,
) -> Floor:
    start, end = day_bounds(now, tz, day)
    bookings: list[dict[str, Any]] = await api.get(
        "scheduling",
        f"/sites/{site_id}/sessions",
        **{"from": start.isoformat()},
        to=end.isoformat(),
    )
    warnings: list[str] = []
    open_alerts = (
        await _optional(
            api.get("notifications", "/alerts", site_id=site_id, status="open", limit=500),
            warnings,
            "escalations",
        )
        or []
    )
    by_patient: dict[str, list[dict[str, Any]]] = {}
    for alert in open_alerts:
        by_patient.setdefault(alert["patient_id"], []).append(alert)
    cards = await asyncio.gather(
        *(
            card(api, principal, b, now, warnings, by_patient.get(b["patient_id"], []))
            for b in bookings
            if b["status"] != "cancelled"
        )
    )
    return Floor(site_id, start.date().isoformat(), list(cards), sorted(set(warnings)))


async def one_card(api: ServiceApi, principal: Principal, session_id: str, now: datetime) -> Card:
    booking = await api.get("scheduling", f"/sessions/{session_id}")
    warnings: list[str] = []
    found = await card(api, principal, booking, now, warnings)
    found.warnings.extend(warnings)
    return found
