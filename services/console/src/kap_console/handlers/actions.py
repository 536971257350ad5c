"""Clinicians' actions, each forwarded to the service that owns it and judged by
its rules. The console builds request bodies from form fields and nothing else:
a refusal (409 with the rule id, 422 naming the field) comes back as it is."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from ..adapters.services import ServiceApi


async def acknowledge(api: ServiceApi, notification_id: str) -> Any:
    return await api.post("notifications", f"/notifications/{notification_id}/ack")


async def resolve_alert(api: ServiceApi, session_id: str, alert_id: str, reason: str) -> Any:
    return await api.post(
        "monitoring", f"/sessions/{session_id}/alerts/{alert_id}/resolve", {"reason": reason}
    )


async def discharge(api: ServiceApi, session_id: str) -> Any:
    return await api.post("monitoring", f"/sessions/{session_id}/discharge")


def local_time(day: str, clock: str, tz: str) -> datetime:
    return datetime.fromisoformat(f"{day}T{clock}").replace(tzinfo=ZoneInfo(tz))


async def book(
    api: ServiceApi,
    *,
    patient_id: str,
    phase: str,
    starts_at: datetime,
    minutes: int,
    room_id: str,
    therapist_id: str,
    prescriber_id: str | None,
) -> Any:
    body: dict[str, Any] = {
        "patient_id": patient_id,
        "phase": phase,
        "starts_at": starts_at.isoformat(),
        "ends_at": (starts_at + timedelta(minutes=minutes)).isoformat(),
        "room_id": room_id,
        "therapist_id": therapist_id,
    }
    if prescriber_id:
        body["prescriber_id"] = prescriber_id
    return await api.post("scheduling", "/sessions", body)


async def check_in(
    api: ServiceApi,
    session_id: str,
    now: datetime,
    *,
    hours_since_food: float | None,
    hours_since_liquid: float | None,
    transport_arranged: bool | None,
) -> Any:
    body: dict[str, Any] = {}
    if hours_since_food is not None:
        body["last_food_at"] = (now - timedelta(hours=hours_since_food)).isoformat()
    if hours_since_liquid is not None:
        body["last_liquid_at"] = (now - timedelta(hours=hours_since_liquid)).isoformat()
    if transport_arranged is not None:
        body["transport_arranged"] = transport_arranged
    return await api.post("scheduling", f"/sessions/{session_id}/check-in", body or None)


async def record_dose(api: ServiceApi, session_id: str, body: dict[str, Any]) -> Any:
    return await api.post("monitoring", f"/sessions/{session_id}/doses", body)


async def record_vitals(api: ServiceApi, session_id: str, body: dict[str, Any]) -> Any:
    return await api.post("monitoring", f"/sessions/{session_id}/vitals", body)


async def complete(api: ServiceApi, session_id: str) -> Any:
    return await api.post("scheduling", f"/sessions/{session_id}/complete")
