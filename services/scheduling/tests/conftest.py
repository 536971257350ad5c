"""Fixtures for scheduling's unit tests: the app in-process on a throw-away SQLite DB
with a controllable clock, a way to feed it events through its own consumer path,
to fire its durable timers at a chosen time, and a small clinic to work in.

`world` is the workhorse: a clinic network (site-a certified for esketamine, in
America/New_York; site-b not certified, in UTC), its staff, and helpers that book,
check in and complete sessions over HTTP. Tests type it as `Any` (a conftest
class cannot be imported by test modules under --import-mode=importlib).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from functools import partial
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
from fastapi.testclient import TestClient

from kap_scheduling.bootstrap import build
from kap_scheduling.config import SchedulingSettings
from kap_scheduling.entrypoints.stream import TIMERS, handlers
from kap_shared.events import (
    ConsentRecorded,
    DischargeCleared,
    Envelope,
    PatientScreened,
    SafetyConcernRaised,
    new_id,
)
from kap_shared.events.enums import ConsentScope, Route, ScreeningOutcome, Severity
from kap_shared.events.intake import ConsentRecordedData, PatientScreenedData
from kap_shared.events.monitoring import DischargeClearedData, SafetyConcernRaisedData
from kap_shared.testing import database_file, service_client, token
from kap_shared.testing_app import (
    app_of,
    delivery,
    outbox_payloads,
    screening_baseline,
    table_counts,
    timer_firing,
)

NEW_YORK = ZoneInfo("America/New_York")
Headers = dict[str, str]

ADMIN = token("adm-1", "admin", ["*"])
COORDINATOR = token("co-amy", "coordinator", ["site-a"])
PRESCRIBER = token("rx-ada", "prescriber", ["site-a"])
THERAPIST = token("th-ben", "therapist", ["site-a"])
NURSE = token("rn-dee", "nurse", ["site-a"])

# Tables a request could write to: "nothing stored, nothing published" compares these.
TABLES = (
    "sites",
    "rooms",
    "clinicians",
    "patients",
    "consents",
    "plans",
    "sessions",
    "holds",
    "integration_deadlines",
    "scheduled_jobs",
    "outbox_messages",
)


def week_zero() -> date:
    """A Monday at least three weeks ahead of the real date, so no timer the tests set is
    ever due for the service's own (real-time) timer worker."""
    start = datetime.now(UTC).date() + timedelta(days=21)
    return start + timedelta(days=(7 - start.weekday()) % 7)


class FakeClock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def set(self, now: datetime) -> None:
        self.now = now

    def advance(self, **delta: float) -> datetime:
        self.now += timedelta(**delta)
        return self.now


@pytest.fixture
def rules_file() -> Path | None:
    """Override in a test module (or parametrize) to run with a RULES_FILE."""
    return None


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(datetime.combine(week_zero(), time(0, 0), NEW_YORK).astimezone(UTC))


@pytest.fixture
def client(tmp_path: Path, clock: FakeClock, rules_file: Path | None) -> Iterator[TestClient]:
    overrides: dict[str, Any] = {"rules_file": rules_file} if rules_file else {}
    with service_client(
        SchedulingSettings, partial(build, clock=clock), tmp_path, **overrides
    ) as test_client:
        yield test_client


db = database_file(SchedulingSettings)


@pytest.fixture
def admin() -> Headers:
    return ADMIN


@pytest.fixture
def deliver(client: TestClient) -> Callable[[Envelope], bool]:
    """Hand an event to scheduling's consumer as Kafka would: serialized, decoded
    against the contract, then handled in the app's event loop and database."""
    return delivery(client, "scheduling", handlers(app_of(client).state.rules))


@pytest.fixture
def fire_timers(client: TestClient) -> Callable[[datetime], int]:
    """Fire the durable timers due at `now` with the service's timer handlers, as the
    service's worker would at that time; returns how many fired."""
    return timer_firing(client, TIMERS)


@pytest.fixture
def outbox(db: Path) -> Callable[[], list[dict[str, Any]]]:
    return partial(outbox_payloads, db)


@pytest.fixture
def counts(db: Path) -> Callable[[], dict[str, int]]:
    return partial(table_counts, db, TABLES)


@pytest.fixture
def add_clinician(client: TestClient, admin: Headers) -> Callable[..., Any]:
    def add(clinician_id: str, role: str, sites: list[str], **extra: Any) -> Any:
        response = client.post(
            "/clinicians",
            json={"clinician_id": clinician_id, "role": role, "sites": sites, **extra},
            headers=admin,
        )
        assert response.status_code == 201, response.text
        return response.json()

    return add


@pytest.fixture
def sites(client: TestClient, admin: Headers) -> list[str]:
    """Two sites in the directory, no clinicians yet."""
    for site_id, name in (("site-a", "North clinic"), ("site-b", "South clinic")):
        response = client.post("/sites", json={"site_id": site_id, "name": name}, headers=admin)
        assert response.status_code == 201, response.text
    return ["site-a", "site-b"]


@pytest.fixture
def staffed(sites: list[str], add_clinician: Callable[..., Any]) -> None:
    """Site A has a prescriber and a therapist; site B has nobody."""
    add_clinician("rx-ada", "prescriber", ["site-a"])
    add_clinician("th-ben", "therapist", ["site-a"])


# -- the clinic world --------------------------------------------------------------------------

BASELINE = screening_baseline(bp_systolic=128, bp_diastolic=82)
DEFAULT_MINUTES = {"preparation": 60, "integration": 60}
CHAIR_MINUTES = {Route.INTRANASAL_ESKETAMINE: 120}


@dataclass
class World:
    client: TestClient
    clock: FakeClock
    db: Path
    deliver: Callable[[Envelope], bool]
    monday: date
    routes: dict[str, Route] = field(default_factory=dict)

    # -- time ------------------------------------------------------------------------------

    def at(self, day: int, hhmm: str = "09:00", *, week: int = 0) -> datetime:
        """Site A local time on day `day` (0 = Monday) of week `week`, as UTC."""
        local = datetime.combine(
            self.monday + timedelta(days=day + 7 * week), time.fromisoformat(hhmm), NEW_YORK
        )
        return local.astimezone(UTC)

    # -- events into scheduling -------------------------------------------------------------

    def upstream(
        self, producer: str, patient_id: str, site_id: str, occurred_at: datetime | None = None
    ) -> dict[str, Any]:
        """The envelope of an event another service publishes in the patient's episode,
        by default at the world's clock."""
        return {
            "producer": producer,
            "site_id": site_id,
            "patient_id": patient_id,
            "correlation_id": f"episode-{patient_id}",
            "occurred_at": occurred_at or self.clock(),
        }

    def screen(
        self,
        patient_id: str = "pt-1",
        route: Route = Route.IV,
        outcome: ScreeningOutcome = ScreeningOutcome.ELIGIBLE,
        *,
        site_id: str = "site-a",
        reviewed_by: str | None = None,
        screening_id: str | None = None,
    ) -> PatientScreened:
        self.routes[patient_id] = route
        event = PatientScreened(
            **self.upstream("intake", patient_id, site_id),
            data=PatientScreenedData(
                screening_id=screening_id or new_id(),
                outcome=outcome,
                route=route,
                indications=["trd"],
                reasons=[] if outcome is ScreeningOutcome.ELIGIBLE else ["SPR-PRE-5"],
                baseline=BASELINE,
                reviewed_by=reviewed_by,
            ),
        )
        assert self.deliver(event)
        return event

    def consent(
        self,
        scope: ConsentScope | str = ConsentScope.TREATMENT,
        granted: bool = True,
        patient_id: str = "pt-1",
        *,
        occurred_at: datetime | None = None,
        site_id: str = "site-a",
    ) -> ConsentRecorded:
        event = ConsentRecorded(
            **self.upstream("intake", patient_id, site_id, occurred_at),
            data=ConsentRecordedData(
                consent_id=new_id(), scope=ConsentScope(scope), granted=granted
            ),
        )
        assert self.deliver(event)
        return event

    def concern(
        self,
        patient_id: str = "pt-1",
        *,
        source: str = "PHQ-9 item 9",
        value: float = 1,
        severity: Severity = Severity.CRITICAL,
        site_id: str = "site-a",
    ) -> SafetyConcernRaised:
        event = SafetyConcernRaised(
            **self.upstream("monitoring", patient_id, site_id),
            data=SafetyConcernRaisedData(source=source, value=value, severity=severity),
        )
        assert self.deliver(event)
        return event

    def discharge(self, session_id: str, patient_id: str = "pt-1") -> DischargeCleared:
        now = self.clock()
        event = DischargeCleared(
            **self.upstream("monitoring", patient_id, "site-a", now),
            data=DischargeClearedData(
                session_id=session_id,
                first_dose_at=now - timedelta(minutes=125),
                cleared_at=now,
                observed_minutes=125,
            ),
        )
        assert self.deliver(event)
        return event

    def ready(self, patient_id: str = "pt-1", route: Route = Route.IV) -> None:
        """Screened eligible with treatment (and, for esketamine, REMS) consent."""
        self.screen(patient_id, route)
        self.consent(ConsentScope.TREATMENT, True, patient_id)
        if route is Route.INTRANASAL_ESKETAMINE:
            self.consent(ConsentScope.REMS_ENROLLMENT, True, patient_id)

    # -- HTTP ------------------------------------------------------------------------------

    def body(self, phase: str, start: datetime, **overrides: Any) -> dict[str, Any]:
        patient_id = overrides.get("patient_id", "pt-1")
        route = self.routes.get(patient_id, Route.IV)
        minutes = CHAIR_MINUTES.get(route, 180) if phase == "dosing" else DEFAULT_MINUTES[phase]
        body: dict[str, Any] = {
            "patient_id": patient_id,
            "phase": phase,
            "starts_at": start.isoformat(),
            "ends_at": (start + timedelta(minutes=minutes)).isoformat(),
            "room_id": "room-a1",
            "therapist_id": "th-ben",
        }
        if phase == "dosing":
            body["prescriber_id"] = "rx-ada"
        body.update(overrides)
        return {k: v for k, v in body.items() if v is not None}

    def book(
        self, phase: str, start: datetime, *, as_: Headers = COORDINATOR, **overrides: Any
    ) -> httpx.Response:
        response: httpx.Response = self.client.post(
            "/sessions", json=self.body(phase, start, **overrides), headers=as_
        )
        return response

    def booked(self, phase: str, start: datetime, **overrides: Any) -> dict[str, Any]:
        response = self.book(phase, start, **overrides)
        assert response.status_code == 201, response.text
        session: dict[str, Any] = response.json()
        return session

    def ready_patients(self, prefix: str, count: int = 4) -> list[str]:
        patients = [f"{prefix}{n}" for n in range(count)]
        for patient_id in patients:
            self.ready(patient_id)
        return patients

    def book_at_once(
        self, patients: list[str], start: datetime, *, key_prefix: str | None = None
    ) -> list[int]:
        """Each patient (with their plan's therapist) booked into the same preparation
        slot at `start`, all at once, one thread each; the sorted statuses. With
        `key_prefix`, each booking carries the Idempotency-Key `<key_prefix><patient>`."""
        therapists = {p: self.plan(p)["therapist_id"] for p in patients}

        def book(patient_id: str) -> int:
            headers = COORDINATOR
            if key_prefix is not None:
                headers = {**COORDINATOR, "Idempotency-Key": f"{key_prefix}{patient_id}"}
            response = self.book(
                "preparation",
                start,
                as_=headers,
                patient_id=patient_id,
                therapist_id=therapists[patient_id],
            )
            return response.status_code

        with ThreadPoolExecutor(max_workers=len(patients)) as pool:
            return sorted(pool.map(book, patients))

    def attest(self, **overrides: Any) -> dict[str, Any]:
        """A patient who fasted well and has a lift home."""
        now = self.clock()
        body: dict[str, Any] = {
            "last_food_at": (now - timedelta(hours=8)).isoformat(),
            "last_liquid_at": (now - timedelta(hours=3)).isoformat(),
            "transport_arranged": True,
        }
        body.update(overrides)
        return {k: v for k, v in body.items() if v is not None}

    def check_in(
        self, session_id: str, body: dict[str, Any] | None = None, *, as_: Headers = NURSE
    ) -> httpx.Response:
        response: httpx.Response = self.client.post(
            f"/sessions/{session_id}/check-in", json=body, headers=as_
        )
        return response

    def complete(self, session_id: str, *, as_: Headers = NURSE) -> httpx.Response:
        response: httpx.Response = self.client.post(f"/sessions/{session_id}/complete", headers=as_)
        return response

    def cancel(
        self, session_id: str, reason: str = "patient_request", *, as_: Headers = COORDINATOR
    ) -> httpx.Response:
        response: httpx.Response = self.client.post(
            f"/sessions/{session_id}/cancel", json={"reason": reason}, headers=as_
        )
        return response

    def reschedule(
        self,
        session_id: str,
        starts_at: datetime,
        ends_at: datetime | None = None,
        *,
        as_: Headers = COORDINATOR,
    ) -> httpx.Response:
        """New times for the session (an hour long unless `ends_at` says otherwise)."""
        ends_at = ends_at or starts_at + timedelta(hours=1)
        times = {"starts_at": starts_at.isoformat(), "ends_at": ends_at.isoformat()}
        response: httpx.Response = self.client.post(
            f"/sessions/{session_id}/reschedule", json=times, headers=as_
        )
        return response

    def run(self, session: dict[str, Any], *, patient_id: str = "pt-1") -> dict[str, Any]:
        """Check the booked session in 10 min before its start and complete it
        (after monitoring's DischargeCleared for a dosing session)."""
        starts_at = datetime.fromisoformat(session["starts_at"])
        self.clock.set(starts_at - timedelta(minutes=10))
        body = self.attest() if session["phase"] == "dosing" else None
        response = self.check_in(session["session_id"], body)
        assert response.status_code == 200, response.text
        self.clock.set(datetime.fromisoformat(session["ends_at"]))
        if session["phase"] == "dosing":
            self.discharge(session["session_id"], patient_id)
        response = self.complete(session["session_id"])
        assert response.status_code == 200, response.text
        done: dict[str, Any] = response.json()
        return done

    def session(self, phase: str, start: datetime, **overrides: Any) -> dict[str, Any]:
        """Book, check in and complete one session."""
        return self.run(
            self.booked(phase, start, **overrides),
            patient_id=overrides.get("patient_id", "pt-1"),
        )

    def prepared(self, patient_id: str = "pt-1", route: Route = Route.IV) -> None:
        """Ready, with the two preparation sessions of KAP-1 completed in week 0."""
        self.ready(patient_id, route)
        for day in (0, 1):
            self.session("preparation", self.at(day, "09:00"), patient_id=patient_id)

    def plan(self, patient_id: str = "pt-1", *, as_: Headers = COORDINATOR) -> dict[str, Any]:
        response = self.client.get(f"/patients/{patient_id}/plan", headers=as_)
        assert response.status_code == 200, response.text
        plan: dict[str, Any] = response.json()
        return plan


@pytest.fixture
def world(
    client: TestClient, clock: FakeClock, db: Path, deliver: Callable[[Envelope], bool]
) -> World:
    """Site A (America/New_York, REMS certified for a year) with rooms room-a1/-a2,
    prescriber rx-ada, therapists th-ben (any hours) and th-cy (weekdays 09:00-17:00),
    nurse rn-dee; site B (UTC, not certified) with room-b1, rx-bo and th-bea."""
    monday = week_zero()
    sites = [
        {
            "site_id": "site-a",
            "name": "North clinic",
            "timezone": "America/New_York",
            "rems_certified_until": (monday + timedelta(days=365)).isoformat(),
        },
        {"site_id": "site-b", "name": "South clinic", "timezone": "UTC"},
    ]
    for site in sites:
        assert client.post("/sites", json=site, headers=ADMIN).status_code == 201
    for site_id, room_id in (("site-a", "room-a1"), ("site-a", "room-a2"), ("site-b", "room-b1")):
        response = client.post(
            f"/sites/{site_id}/rooms", json={"room_id": room_id, "name": room_id}, headers=ADMIN
        )
        assert response.status_code == 201
    weekdays = {d: {"start": "09:00", "end": "17:00"} for d in ("mon", "tue", "wed", "thu", "fri")}
    staff: list[dict[str, Any]] = [
        {"clinician_id": "rx-ada", "role": "prescriber", "sites": ["site-a"]},
        {"clinician_id": "th-ben", "role": "therapist", "sites": ["site-a"]},
        {
            "clinician_id": "th-cy",
            "role": "therapist",
            "sites": ["site-a"],
            "working_hours": weekdays,
        },
        {"clinician_id": "rn-dee", "role": "nurse", "sites": ["site-a"]},
        {"clinician_id": "rx-bo", "role": "prescriber", "sites": ["site-b"]},
        {"clinician_id": "th-bea", "role": "therapist", "sites": ["site-b"]},
    ]
    for clinician in staff:
        response = client.post("/clinicians", json=clinician, headers=ADMIN)
        assert response.status_code == 201, response.text
    return World(client=client, clock=clock, db=db, deliver=deliver, monday=monday)
