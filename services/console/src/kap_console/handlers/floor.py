"""The treatment floor: a site's sessions today, one card each, assembled from
scheduling (booking, room), monitoring (window) and notifications (escalations),
with the patient's display name from intake for roles allowed to read it (intake
audits each patient's read). Each service is asked once per board, not once per
chair (site-day batch reads), concurrently; a service that fails shows as a warning
on the board, not an error page."""

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


async def display_names(
    api: ServiceApi, principal: Principal, patient_ids: list[str], warnings: list[str]
) -> dict[str, str]:
    """Patient id -> display name, in one call to intake (which audits each patient's
    read); empty for roles that do not see names at the bedside."""
    ids = sorted(set(patient_ids))
    if principal.role not in NAME_READERS or not ids:
        return {}
    answer = await _optional(
        api.get("intake", "/patients/display-names", ids=ids), warnings, "names"
    )
    if not isinstance(answer, dict):
        return {}
    return {p["patient_id"]: p["display_name"] for p in answer.get("patients", [])}


async def one_card(api: ServiceApi, principal: Principal, session_id: str, now: datetime) -> Card:
    """One card again (a live update): four calls, made concurrently once the booking
    names the patient."""
    booking = await api.get("scheduling", f"/sessions/{session_id}")
    warnings: list[str] = []
    patient_id = booking["patient_id"]
    window, escalations, names = await asyncio.gather(
        _optional(api.get("monitoring", f"/sessions/{session_id}"), warnings, "monitoring"),
        _optional(
            api.get("notifications", "/alerts", site_id=booking["site_id"], patient_id=patient_id),
            warnings,
            "escalations",
        ),
        display_names(api, principal, [patient_id], warnings),
    )
    found = build_card(booking, window, escalations or [], now, names.get(patient_id))
    found.warnings.extend(warnings)
    return found


async def floor(
    api: ServiceApi,
    principal: Principal,
    site_id: str,
    now: datetime,
    tz: str | None,
    day: date | None = None,
) -> Floor:
    """The board in four calls whatever the number of chairs: scheduling's bookings,
    monitoring's windows and notifications' open escalations of the site's day at once,
    then intake's display names for the booked patients."""
    start, end = day_bounds(now, tz, day)
    window = {"from": start.isoformat(), "to": end.isoformat()}
    warnings: list[str] = []

    async def bookings_and_names() -> tuple[list[dict[str, Any]], dict[str, str]]:
        bookings: list[dict[str, Any]] = await api.get(
            "scheduling", f"/sites/{site_id}/sessions", **window
        )
        live = [b for b in bookings if b["status"] != "cancelled"]
        return live, await display_names(api, principal, [b["patient_id"] for b in live], warnings)

    (bookings, names), windows, open_alerts = await asyncio.gather(
        bookings_and_names(),
        _optional(
            api.get("monitoring", f"/sites/{site_id}/sessions", **window), warnings, "monitoring"
        ),
        _optional(
            api.get("notifications", "/alerts", site_id=site_id, status="open", limit=500),
            warnings,
            "escalations",
        ),
    )
    by_session = {w["session_id"]: w for w in windows or []}
    by_patient: dict[str, list[dict[str, Any]]] = {}
    for alert in open_alerts or []:
        by_patient.setdefault(alert["patient_id"], []).append(alert)
    cards = [
        build_card(
            b,
            by_session.get(b["session_id"]),
            by_patient.get(b["patient_id"], []),
            now,
            names.get(b["patient_id"]),
        )
        for b in bookings
    ]
    return Floor(site_id, start.date().isoformat(), cards, sorted(set(warnings)))
