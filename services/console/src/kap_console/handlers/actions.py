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


async def resolve_concern(api: ServiceApi, session_id: str, concern_id: str, decision: str) -> Any:
    """MBC-1: the prescriber's coded decision on an in-session safety concern."""
    return await api.post(
        "monitoring",
        f"/sessions/{session_id}/safety-concerns/{concern_id}/resolve",
        {"decision": decision},
    )


async def discharge(api: ServiceApi, session_id: str) -> Any:
    """A nurse's request: 200 once every criterion holds, else 409 with the blockers."""
    return await api.post("monitoring", f"/sessions/{session_id}/discharge")


# The coded answers of monitoring's stability assessment (SPR-DIS-1/2, SPR-GOAL, KET-DIS-4).
ASSESSMENT_ANSWERS = (
    ("clinically_stable", "Clinically stable"),
    ("vital_signs_acceptable", "Vital signs acceptable"),
    ("sedation_resolved", "Sedation resolved"),
    ("dissociation_resolved", "Dissociation resolved"),
    ("respiratory_depression_resolved", "Respiratory depression resolved"),
    ("alert_and_oriented", "Alert and oriented"),
)


async def sign_discharge(api: ServiceApi, session_id: str, assessment: dict[str, Any]) -> Any:
    """The prescriber signs: the stability assessment (SPR-DIS-1 / MON-DIS-3), then the
    discharge. Either may refuse (409 with the blockers); nothing is assumed here."""
    await api.post("monitoring", f"/sessions/{session_id}/stability-assessment", assessment)
    return await discharge(api, session_id)


def local_time(day: str, clock: str, tz: str) -> datetime:
    return datetime.fromisoformat(f"{day}T{clock}").replace(tzinfo=ZoneInfo(tz))


def charted_time(clock: str, now: datetime, tz: str) -> datetime:
    """A clock time charted at the chair: its latest occurrence not after `now` in the
    floor's zone (a dose at 23:50 charted at 00:10 is yesterday's). Monitoring judges
    whether it is inside the session's window (MON-DOSE-2)."""
    today = now.astimezone(ZoneInfo(tz)).date().isoformat()
    when = local_time(today, clock, tz)
    return when - timedelta(days=1) if when > now else when


async def book(
    api: ServiceApi,
    *,
    patient_id: str,
    phase: str,
    starts_at: datetime,
    minutes: int,
    room_id: str,
    therapist_id: str | None,
    prescriber_id: str | None,
) -> Any:
    """Scheduling judges it: KAP-1 per protocol, KAP-3 (a therapist where the protocol
    says so; esketamine dosing may omit one), SPR-CERT-2 (a prescriber for esketamine
    dosing), SPR-SCH-4 (chair time and the check-in block)."""
    body: dict[str, Any] = {
        "patient_id": patient_id,
        "phase": phase,
        "starts_at": starts_at.isoformat(),
        "ends_at": (starts_at + timedelta(minutes=minutes)).isoformat(),
        "room_id": room_id,
    }
    if therapist_id:
        body["therapist_id"] = therapist_id
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


def dose_body(
    *,
    route: str,
    agent: str,
    dose_mg: float,
    device_number: int | None,
    administered_at: datetime | None,
    dosing_ended_at: datetime | None,
    lot_number: str | None,
    concomitant_medications: list[str] | None,
    nasal_medication_used: bool | None,
    nasal_medication_at: datetime | None,
) -> dict[str, Any]:
    """Monitoring's `POST /sessions/{id}/doses` body (0.3.0): only what was charted.
    `concomitant_medications` [] means "asked, none" (SPR-PRE-7); None, not asked."""
    body: dict[str, Any] = {"route": route, "agent": agent, "dose_mg": dose_mg}
    optional: dict[str, Any] = {
        "device_number": device_number,
        "administered_at": administered_at.isoformat() if administered_at else None,
        "dosing_ended_at": dosing_ended_at.isoformat() if dosing_ended_at else None,
        "lot_number": lot_number,
        "concomitant_medications": concomitant_medications,
        "nasal_medication_used": nasal_medication_used,
        "nasal_medication_at": nasal_medication_at.isoformat() if nasal_medication_at else None,
    }
    body.update({k: v for k, v in optional.items() if v is not None})
    return body


async def record_dose(api: ServiceApi, session_id: str, body: dict[str, Any]) -> Any:
    return await api.post("monitoring", f"/sessions/{session_id}/doses", body)


async def record_vitals(api: ServiceApi, session_id: str, body: dict[str, Any]) -> Any:
    return await api.post("monitoring", f"/sessions/{session_id}/vitals", body)


async def complete(api: ServiceApi, session_id: str) -> Any:
    return await api.post("scheduling", f"/sessions/{session_id}/complete")
