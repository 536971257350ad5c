"""Steps of the care pathway through scheduling, driven over HTTP only. A dosing
session completes once scheduling has consumed its DischargeCleared: produced by the
test in monitoring's place (`Course.discharge`), or, with
`Course.run_session(..., monitored=True)`, published by the real monitoring after the
session went through its HTTP API (`Course.discharge_at_monitoring`).

Sites here have fixed ids so that tests/rules/scheduling.json can give them their
own rules; each platform run (SQLite, then PostgreSQL) has fresh databases, so a
fixed id is unique per run, while patient ids (from intake) are unique everywhere.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from flows import ADMIN, ELIGIBLE_SCREENING, REFERRAL, apis
from monitoring_flows import IV, Window
from support import Api, eventually, produce

from kap_local.platform import Platform
from kap_shared.events import DischargeCleared
from kap_shared.events.enums import Route
from kap_shared.events.monitoring import DischargeClearedData
from kap_shared.events.topics import MONITORING_EVENTS

Caller = tuple[str, str, list[str]]
WEEKDAY_HOURS = {d: {"start": "07:00", "end": "19:00"} for d in ("mon", "tue", "wed", "thu", "fri")}
SESSION_MINUTES = {"preparation": 60, "integration": 60}
DOSING_MINUTES = {"intranasal_esketamine": 120, "iv": 180, "im": 180}


@dataclass
class SchedulingSite:
    site_id: str
    timezone: str
    rooms: list[str]
    prescribers: list[str]
    therapists: list[str]
    nurse: str
    coordinator: str
    monday: date  # a Monday at least a week ahead: every session is booked in the future

    def as_(self, who: str) -> Caller:
        role = {"rn": "nurse", "co": "coordinator", "rx": "prescriber", "th": "therapist"}[
            who.split("-")[0]
        ]
        return (who, role, [self.site_id])

    @property
    def nurse_(self) -> Caller:
        return self.as_(self.nurse)

    @property
    def coordinator_(self) -> Caller:
        return self.as_(self.coordinator)

    def at(self, day: int, hhmm: str, *, week: int = 0) -> datetime:
        """Local time at the site on `day` (0 = Monday) of week `week`."""
        local = datetime.combine(
            self.monday + timedelta(days=day + 7 * week),
            time.fromisoformat(hhmm),
            ZoneInfo(self.timezone),
        )
        return local.astimezone(UTC)


def next_monday(after_days: int = 7) -> date:
    start = datetime.now(UTC).date() + timedelta(days=after_days)
    return start + timedelta(days=(7 - start.weekday()) % 7)


async def create_site(
    platform: Platform,
    site_id: str,
    *,
    timezone: str = "America/New_York",
    rooms: int = 2,
    prescribers: int = 1,
    therapists: int = 1,
    rems_certified: bool = True,
) -> SchedulingSite:
    """A site with rooms, prescribers, therapists, a nurse and a coordinator, all
    working weekdays 07:00-19:00 site time (idempotent within one platform run)."""
    api = apis(platform)["scheduling"]
    site = SchedulingSite(
        site_id=site_id,
        timezone=timezone,
        rooms=[f"{site_id}-room-{n}" for n in range(1, rooms + 1)],
        prescribers=[f"rx-{site_id}-{n}" for n in range(1, prescribers + 1)],
        therapists=[f"th-{site_id}-{n}" for n in range(1, therapists + 1)],
        nurse=f"rn-{site_id}",
        coordinator=f"co-{site_id}",
        monday=next_monday(),
    )
    body: dict[str, Any] = {"site_id": site_id, "name": f"Clinic {site_id}", "timezone": timezone}
    if rems_certified:
        body["rems_certified_until"] = (date.today() + timedelta(days=365)).isoformat()
    await _created(api.request("POST", "/sites", as_=ADMIN, json_body=body))
    for room_id in site.rooms:
        await _created(
            api.request(
                "POST",
                f"/sites/{site_id}/rooms",
                as_=ADMIN,
                json_body={"room_id": room_id, "name": room_id},
            )
        )
    staff = [(c, "prescriber") for c in site.prescribers] + [
        (c, "therapist") for c in site.therapists
    ]
    staff += [(site.nurse, "nurse"), (site.coordinator, "coordinator")]
    for clinician_id, role in staff:
        await _created(
            api.request(
                "POST",
                "/clinicians",
                as_=ADMIN,
                json_body={
                    "clinician_id": clinician_id,
                    "role": role,
                    "sites": [site_id],
                    "working_hours": WEEKDAY_HOURS,
                },
            )
        )
    return site


async def _created(request: Any) -> None:
    response = await request
    assert response.status_code in (201, 409), response.text  # 409: already there


# -- intake ------------------------------------------------------------------------------------


async def refer(platform: Platform, site: SchedulingSite) -> str:
    response = await apis(platform)["intake"].request(
        "POST", "/patients", as_=site.nurse_, json_body={**REFERRAL, "site_id": site.site_id}
    )
    assert response.status_code == 201, response.text
    patient_id: str = response.json()["patient_id"]
    return patient_id


async def screen(
    platform: Platform, site: SchedulingSite, patient_id: str, **changes: Any
) -> dict[str, Any]:
    response = await apis(platform)["intake"].request(
        "POST",
        f"/patients/{patient_id}/screenings",
        as_=site.nurse_,
        json_body={**ELIGIBLE_SCREENING, **changes},
    )
    assert response.status_code == 201, response.text
    screening: dict[str, Any] = response.json()
    return screening


async def approve(
    platform: Platform, site: SchedulingSite, patient_id: str, screening_id: str
) -> dict[str, Any]:
    response = await apis(platform)["intake"].request(
        "POST",
        f"/patients/{patient_id}/screenings/{screening_id}/review",
        as_=site.as_(site.prescribers[0]),
        json_body={"decision": "approve", "reason": "bp_controlled_on_recheck"},
    )
    assert response.status_code == 200, response.text
    review: dict[str, Any] = response.json()
    return review


async def consent(platform: Platform, site: SchedulingSite, patient_id: str, scope: str) -> None:
    response = await apis(platform)["intake"].request(
        "POST",
        f"/patients/{patient_id}/consents",
        as_=site.as_(site.prescribers[0]),
        json_body={"scope": scope, "granted": True},
    )
    assert response.status_code == 201, response.text


# -- scheduling ----------------------------------------------------------------------------------


def scheduling(platform: Platform) -> Api:
    return apis(platform)["scheduling"]


async def plan_when(
    platform: Platform,
    site: SchedulingSite,
    patient_id: str,
    *,
    consents: tuple[str, ...] = (),
    timeout: float = 60.0,
) -> dict[str, Any]:
    """The patient's active plan, once scheduling has consumed the screening (and the
    named consents)."""

    async def check() -> dict[str, Any] | None:
        response = await scheduling(platform).request(
            "GET", f"/patients/{patient_id}/plan", as_=site.coordinator_
        )
        if response.status_code == 404:
            return None
        assert response.status_code == 200, response.text
        plan: dict[str, Any] = response.json()
        granted = {s for s, c in plan["consents"].items() if c["granted"]}
        if plan["status"] == "active" and set(consents) <= granted:
            return plan
        return None

    plan: dict[str, Any] = await eventually(check, timeout=timeout)
    return plan


async def enrolled(
    platform: Platform, site: SchedulingSite, route: str = "iv", **screening: Any
) -> dict[str, Any]:
    """A patient referred, screened eligible for `route`, consented to treatment (and,
    for esketamine, to REMS enrolment) and planned: the active plan."""
    patient_id = await refer(platform, site)
    result = await screen(platform, site, patient_id, route=route, **screening)
    assert result["outcome"] == "eligible", result
    scopes = (
        ("treatment", "rems_enrollment") if route == "intranasal_esketamine" else ("treatment",)
    )
    for scope in scopes:
        await consent(platform, site, patient_id, scope)
    return await plan_when(platform, site, patient_id, consents=scopes)


def attestation() -> dict[str, Any]:
    """Fasted (solids 8 h, liquids 3 h), with a lift home arranged."""
    now = datetime.now(UTC)
    return {
        "last_food_at": (now - timedelta(hours=8)).isoformat(),
        "last_liquid_at": (now - timedelta(hours=3)).isoformat(),
        "transport_arranged": True,
    }


@dataclass(frozen=True)
class Course:
    """A planned patient's sessions at a scheduling site (`plan` is what `plan_when`
    returned), booked, checked in and completed as the site's coordinator and nurse."""

    platform: Platform
    site: SchedulingSite
    plan: dict[str, Any]

    def booking(self, phase: str, starts_at: datetime, *, room_id: str) -> dict[str, Any]:
        """The body of POST /sessions: the plan's team, the phase's usual length."""
        route = self.plan["route"]
        minutes = DOSING_MINUTES[route] if phase == "dosing" else SESSION_MINUTES[phase]
        body = {
            "patient_id": self.plan["patient_id"],
            "phase": phase,
            "starts_at": starts_at.isoformat(),
            "ends_at": (starts_at + timedelta(minutes=minutes)).isoformat(),
            "room_id": room_id,
            "therapist_id": self.plan["therapist_id"],
        }
        if phase == "dosing":
            body["prescriber_id"] = self.plan["prescriber_id"]
        return body

    async def book(self, phase: str, starts_at: datetime, *, room_id: str) -> dict[str, Any]:
        response = await scheduling(self.platform).request(
            "POST",
            "/sessions",
            as_=self.site.coordinator_,
            json_body=self.booking(phase, starts_at, room_id=room_id),
        )
        assert response.status_code == 201, response.text
        session: dict[str, Any] = response.json()
        return session

    async def check_in(self, phase: str, starts_at: datetime, *, room_id: str) -> str:
        """Book a session and check it in (a dosing session with `attestation()`); its id."""
        session = await self.book(phase, starts_at, room_id=room_id)
        session_id = str(session["session_id"])
        response = await scheduling(self.platform).request(
            "POST",
            f"/sessions/{session_id}/check-in",
            as_=self.site.nurse_,
            json_body=attestation() if phase == "dosing" else {},
        )
        assert response.status_code == 200, response.text
        return session_id

    def bedside(self, session_id: str) -> Window:
        """Monitoring's window of a dosing session checked in at scheduling, driven as the
        site's nurse and the plan's prescriber (call `opened()` before using it)."""
        return Window(
            self.platform,
            self.site.site_id,
            Route(self.plan["route"]),
            self.plan["patient_id"],
            session_id=session_id,
            nurse=self.site.nurse_,
            prescriber=self.site.as_(self.plan["prescriber_id"]),
        )

    async def discharge(self, session_id: str) -> None:
        """What monitoring publishes when it clears the patient (produced by the test,
        in monitoring's place)."""
        now = datetime.now(UTC)
        event = DischargeCleared(
            producer="monitoring",
            site_id=self.site.site_id,
            patient_id=self.plan["patient_id"],
            correlation_id=self.plan["correlation_id"],
            data=DischargeClearedData(
                session_id=session_id,
                first_dose_at=now - timedelta(minutes=125),
                cleared_at=now,
                observed_minutes=125,
            ),
        )
        await produce(self.platform.bootstrap, MONITORING_EVENTS, [(event.key, event.to_json())])

    async def discharge_at_monitoring(self, session_id: str) -> dict[str, Any]:
        """The dosing session through monitoring's gates, dosed now: one dose (esketamine:
        one device after a pre-dose BP, SPR-PRE-3/4/7 answered), every discharge criterion
        charted, the prescriber's stability assessment, then the discharge; monitoring
        publishes DischargeCleared. Dosing now needs a site without a minimum observation
        time (SPR-MON-3 / KET-DIS-6 set to 0 in tests/rules/monitoring.json)."""
        window = await self.bedside(session_id).opened()
        if window.route is Route.INTRANASAL_ESKETAMINE:
            await window.first_device(0)
        else:
            await window.dose(0, **{**IV, "route": window.route.value})
        await window.ready()
        response = await window.post("/discharge")
        assert response.status_code == 200, response.text
        cleared: dict[str, Any] = response.json()
        return cleared

    async def run_session(
        self, phase: str, starts_at: datetime, *, room_id: str, monitored: bool = False
    ) -> dict[str, Any]:
        """Book, check in and complete one session; a dosing session completes once
        scheduling has consumed monitoring's DischargeCleared for it (published by the
        real monitoring when `monitored`, else produced by the test in its place)."""
        session_id = await self.check_in(phase, starts_at, room_id=room_id)
        if phase == "dosing" and monitored:
            await self.discharge_at_monitoring(session_id)
        elif phase == "dosing":
            await self.discharge(session_id)
        return await self.completed(session_id)

    async def completed(self, session_id: str) -> dict[str, Any]:
        """Complete a checked-in session, retried while a dosing session's DischargeCleared
        has not been consumed yet (SCH-DIS-1)."""
        api = scheduling(self.platform)

        async def complete() -> dict[str, Any] | None:
            response = await api.request(
                "POST", f"/sessions/{session_id}/complete", as_=self.site.nurse_
            )
            if response.status_code == 409 and response.json()["error"]["code"] == "SCH-DIS-1":
                return None  # DischargeCleared not consumed yet
            assert response.status_code == 200, response.text
            done: dict[str, Any] = response.json()
            return done

        done: dict[str, Any] = await eventually(complete, timeout=60, interval=0.2)
        return done


async def gather(*steps: Any) -> list[Any]:
    return list(await asyncio.gather(*steps))
