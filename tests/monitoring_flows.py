"""A dosing session's monitoring window driven over monitoring's HTTP API, with the
plan and the session announced the way scheduling does (TreatmentPlanCreated,
SessionScheduled, SessionCheckedIn produced onto kap.scheduling.events.v1).

The steps satisfy monitoring's fail-closed gates (issue 8): a BP before the first
esketamine device (SPR-PRE-4), the SPR-PRE-3/7 answers with it, the end of an IV
infusion (KET-DIS-6), a full recent reading with a dissociation assessment and a
prescriber's signed stability assessment before discharge.

A window of a session that the real scheduling checked in is the same class given
that session's ids (`Window(..., session_id=, nurse=, prescriber=)`), then `opened()`
instead of `open()`: see `scheduling_flows.bedside`.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from flows import apis, unique
from support import Api, eventually, produce

from kap_local.platform import Platform
from kap_shared.events import monitoring, scheduling, topics
from kap_shared.events.enums import Phase, Route
from kap_shared.events.envelope import utc_now

ESKETAMINE: dict[str, Any] = {
    "route": "intranasal_esketamine",
    "agent": "esketamine",
    "dose_mg": 28,
}
IV: dict[str, Any] = {"route": "iv", "agent": "ketamine", "dose_mg": 35}
Caller = tuple[str, str, list[str]]
# SPR-PRE-3 and SPR-PRE-7, answered with the first esketamine device.
FIRST_DEVICE: dict[str, Any] = {"nasal_medication_used": False, "concomitant_medications": []}
# Every discharge criterion in range (KET-DIS-2/3/4, SPR-GOAL).
STABLE: dict[str, Any] = {
    "bp_systolic": 124,
    "bp_diastolic": 78,
    "heart_rate": 72,
    "spo2": 98,
    "respiratory_rate": 14,
    "sedation_moaas": 5,
    "dissociation": "none",
}
# The stability criteria a prescriber's assessment attests (SPR-DIS-1); a signing
# assessment adds, for ketamine, the escort (KET-DIS-5) and the Aldrete score (KET-DIS-1).
STABILITY_CRITERIA: dict[str, Any] = {
    "clinically_stable": True,
    "vital_signs_acceptable": True,
    "sedation_resolved": True,
    "dissociation_resolved": True,
    "respiratory_depression_resolved": True,
    "alert_and_oriented": True,
}
SIGNED: dict[str, Any] = {**STABILITY_CRITERIA, "escort_confirmed": True, "aldrete_score": 10}
# The data of the SafetyConcernRaised that a PHQ-9 item 9 of 1 raises (MBC-1).
MBC_1_CONCERN: dict[str, Any] = {
    "source": "PHQ-9 item 9",
    "value": 1.0,
    "severity": "critical",
    "rule_id": "MBC-1",
}


async def phq9(api: Api, patient_id: str, caller: Caller, items: list[int]) -> dict[str, Any]:
    """A PHQ-9 recorded for the patient at monitoring (POST /patients/{id}/measures);
    the recorded measure (total, remission, safety concern)."""
    response = await api.request(
        "POST",
        f"/patients/{patient_id}/measures",
        as_=caller,
        json_body={"instrument": "PHQ-9", "items": items},
    )
    assert response.status_code == 201, response.text
    measure: dict[str, Any] = response.json()
    return measure


class Window:
    """One dosing session's monitoring window, driven as a nurse at its site (and its
    prescriber where a prescriber must act)."""

    def __init__(
        self,
        platform: Platform,
        site_id: str | None = None,
        route: Route = Route.IV,
        patient_id: str | None = None,
        *,
        session_id: str | None = None,
        nurse: Caller | None = None,
        prescriber: Caller | None = None,
        therapist: str | None = None,
    ) -> None:
        self.platform = platform
        self.site_id = site_id or unique("site")
        self.patient_id = patient_id or unique("pt")
        self.session_id = session_id or unique("ses")
        self.route = route
        self.api: Api = apis(platform)["monitoring"]
        self.nurse = nurse or (unique("rn"), "nurse", [self.site_id])
        self.prescriber = prescriber or (unique("dr"), "prescriber", [self.site_id])
        self.therapist = therapist or unique("th")

    async def open(self, checked_in_hours_ago: float = 3) -> Window:
        await self.announce(utc_now() - timedelta(hours=checked_in_hours_ago))
        return await self.opened()

    async def announce(self, starts: datetime) -> scheduling.SessionScheduled:
        """The plan, the dosing session starting at `starts` and its check-in then,
        produced onto the scheduling topic as scheduling announces them; the session's event."""
        common: dict[str, Any] = {
            "producer": "scheduling",
            "site_id": self.site_id,
            "patient_id": self.patient_id,
            "correlation_id": unique("episode"),
        }
        plan_id = unique("plan")
        plan = scheduling.TreatmentPlanCreated(
            **common,
            data=scheduling.TreatmentPlanCreatedData(
                plan_id=plan_id,
                route=self.route,
                protocol=self.route.value,
                prescriber_id=self.prescriber[0],
                therapist_id=self.therapist,
                planned_dosing_sessions=6,
            ),
        )
        scheduled = scheduling.SessionScheduled(
            **common,
            data=scheduling.SessionScheduledData(
                session_id=self.session_id,
                plan_id=plan_id,
                phase=Phase.DOSING,
                sequence=1,
                starts_at=starts,
                ends_at=starts + timedelta(hours=4),
                room_id=unique("room"),
                prescriber_id=self.prescriber[0],
                therapist_id=self.therapist,
            ),
        )
        checked_in = scheduling.SessionCheckedIn(
            **common,
            causation_id=str(scheduled.event_id),
            data=scheduling.SessionCheckedInData(
                session_id=self.session_id, phase=Phase.DOSING, checked_in_at=starts
            ),
        )
        key = self.patient_id.encode()
        await produce(
            self.platform.bootstrap,
            topics.SCHEDULING_EVENTS,
            [(key, plan.to_json()), (key, scheduled.to_json()), (key, checked_in.to_json())],
        )
        return scheduled

    async def opened(self) -> Window:
        """Once monitoring has opened the window (consumed the session's check-in)."""

        async def is_open() -> bool:
            response = await self.api.request("GET", f"/sessions/{self.session_id}", as_=self.nurse)
            return response.status_code == 200 and response.json()["status"] == "checked_in"

        await eventually(is_open, timeout=60)
        return self

    async def post(self, path: str, body: Any = None, *, as_: Any = None) -> Any:
        return await self.api.request(
            "POST", f"/sessions/{self.session_id}{path}", as_=as_ or self.nurse, json_body=body
        )

    async def try_dose(self, minutes_ago: float, **body: Any) -> Any:
        at = utc_now() - timedelta(minutes=minutes_ago)
        if body.get("route") == "iv" and "dosing_ended_at" not in body:
            body["dosing_ended_at"] = at.isoformat()  # a short infusion, charted at its end
        return await self.post("/doses", {**body, "administered_at": at.isoformat()})

    async def dose(self, minutes_ago: float, **body: Any) -> None:
        response = await self.try_dose(minutes_ago, **body)
        assert response.status_code == 201, response.text

    async def first_device(self, minutes_ago: float, **body: Any) -> None:
        """Esketamine device 1: a BP just before it, SPR-PRE-3/7 answered with it."""
        await self.vitals(minutes_ago + 1, bp_systolic=124, bp_diastolic=80)
        await self.dose(minutes_ago, **ESKETAMINE, device_number=1, **FIRST_DEVICE, **body)

    async def vitals(self, minutes_ago: float = 0, **body: Any) -> dict[str, Any]:
        at = (utc_now() - timedelta(minutes=minutes_ago)).isoformat()
        response = await self.post("/vitals", {**body, "recorded_at": at})
        assert response.status_code in (200, 201), response.text
        result: dict[str, Any] = response.json()
        return result

    async def assess(self, **overrides: Any) -> None:
        response = await self.post(
            "/stability-assessment", {**SIGNED, **overrides}, as_=self.prescriber
        )
        assert response.status_code == 201, response.text

    async def ready(self, **reading: Any) -> None:
        """Every discharge criterion charted now, signed by the prescriber."""
        await self.vitals(**{**STABLE, **reading})
        await self.assess()

    async def state(self) -> dict[str, Any]:
        response = await self.api.request("GET", f"/sessions/{self.session_id}", as_=self.nurse)
        assert response.status_code == 200, response.text
        result: dict[str, Any] = response.json()
        return result

    def device_reading(self, reading_id: str, **metrics: Any) -> monitoring.VitalsRecorded:
        return monitoring.VitalsRecorded(
            producer="gw-bedside-1",
            site_id=self.site_id,
            patient_id=self.patient_id,
            correlation_id=unique("gw"),
            data=monitoring.VitalsRecordedData(
                session_id=self.session_id,
                reading_id=reading_id,
                recorded_at=utc_now(),
                **metrics,
            ),
        )
