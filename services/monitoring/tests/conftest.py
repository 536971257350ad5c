"""Fixtures for monitoring's unit tests: the app in-process on a throw-away
SQLite DB, a way to feed it events through its own consumer path, open
monitoring windows, tokens, and readers of what was stored and published."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

# Re-exported (`as`) for the test modules.
from monitoring_flows import ESKETAMINE as ESKETAMINE
from monitoring_flows import FIRST_DEVICE as FIRST_DEVICE
from monitoring_flows import IV
from monitoring_flows import SIGNED as SIGNED
from monitoring_flows import STABLE as STABLE

from kap_monitoring.bootstrap import build
from kap_monitoring.config import MonitoringSettings
from kap_monitoring.entrypoints.stream import HANDLERS
from kap_shared.events import (
    Envelope,
    PatientScreened,
    SessionCheckedIn,
    SessionScheduled,
    TreatmentPlanCreated,
)
from kap_shared.events.enums import Phase, Route, ScreeningOutcome
from kap_shared.events.intake import Baseline, PatientScreenedData
from kap_shared.events.scheduling import (
    SessionCheckedInData,
    TreatmentPlanCreatedData,
)
from kap_shared.testing import app_client, caller, database_file, service_client, token
from kap_shared.testing_app import (
    delivery,
    envelope,
    outbox_payloads,
    session_booking,
    table_counts,
)
from kap_shared.testing_ops import assert_error as assert_error

from .clock import ago, iso
from .clock import now as now  # re-exported for the vitals batch tests

SITE = "site-a"
OTHER_SITE = "site-b"
PATIENT = "pt-1"
Headers = dict[str, str]
Deliver = Callable[[Envelope], bool]
Outbox = Callable[..., list[dict[str, Any]]]  # the `outbox` fixture
Counts = Callable[[], dict[str, int]]  # the `counts` fixture


client = app_client(MonitoringSettings, build)


db = database_file(MonitoringSettings)


@pytest.fixture
def deliver(client: TestClient) -> Deliver:
    """Hand an event to monitoring's consumer as Kafka would: serialized, decoded
    against the contract, handled in the app's loop and database. Exceptions the
    handler raises propagate (the broker middleware turns them into dead letters)."""
    return delivery(client, "monitoring", HANDLERS)


# -- events from the other services --------------------------------------------------------


def screened(
    patient_id: str = PATIENT,
    *,
    site_id: str = SITE,
    phq9_total: int = 20,
    gad7_total: int = 12,
    pcl5_total: int | None = 40,
    bp: tuple[int, int] = (124, 78),
    heart_rate: int = 72,
) -> PatientScreened:
    return PatientScreened(
        **envelope("intake", site_id, patient_id),
        data=PatientScreenedData(
            screening_id=f"scr-{patient_id}",
            outcome=ScreeningOutcome.ELIGIBLE,
            route=Route.INTRANASAL_ESKETAMINE,
            indications=["trd"],
            baseline=Baseline(
                phq9_total=phq9_total,
                phq9_item9=0,
                gad7_total=gad7_total,
                pcl5_total=pcl5_total,
                bp_systolic=bp[0],
                bp_diastolic=bp[1],
                heart_rate=heart_rate,
            ),
        ),
    )


def plan_created(
    plan_id: str, route: Route, *, patient_id: str = PATIENT, site_id: str = SITE
) -> TreatmentPlanCreated:
    return TreatmentPlanCreated(
        **envelope("scheduling", site_id, patient_id),
        data=TreatmentPlanCreatedData(
            plan_id=plan_id,
            route=route,
            protocol=route.value,
            prescriber_id="rx-ada",
            therapist_id="th-ben",
            planned_dosing_sessions=6,
        ),
    )


def scheduled(
    session_id: str,
    *,
    patient_id: str = PATIENT,
    site_id: str = SITE,
    phase: Phase = Phase.DOSING,
) -> SessionScheduled:
    starts = now() - timedelta(hours=3)
    return SessionScheduled(
        **envelope("scheduling", site_id, patient_id),
        data=session_booking(
            session_id,
            starts,
            plan_id=f"plan-{session_id}",
            phase=phase,
            ends_at=starts + timedelta(hours=4),
        ),
    )


def checked_in(booking: SessionScheduled) -> SessionCheckedIn:
    """The check-in of `booking`'s session, at its start."""
    booked = booking.data
    return SessionCheckedIn(
        **envelope("scheduling", booking.site_id, booking.patient_id),
        data=SessionCheckedInData(
            session_id=booked.session_id, phase=booked.phase, checked_in_at=booked.starts_at
        ),
    )


@pytest.fixture
def open_session(deliver: Deliver) -> Callable[..., str]:
    """A checked-in dosing session (a monitoring window), with the patient's baseline and
    a plan of `route` (IM ketamine unless said otherwise)."""
    screened_patients: set[str] = set()

    def make(
        session_id: str = "ses-1",
        *,
        patient_id: str = PATIENT,
        site_id: str = SITE,
        baseline: bool = True,
        check_in: bool = True,
        phase: Phase = Phase.DOSING,
        route: Route = Route.IM,
    ) -> str:
        deliver(plan_created(f"plan-{session_id}", route, patient_id=patient_id, site_id=site_id))
        if baseline and patient_id not in screened_patients:
            deliver(screened(patient_id, site_id=site_id))
            screened_patients.add(patient_id)
        booking = scheduled(session_id, patient_id=patient_id, site_id=site_id, phase=phase)
        deliver(booking)
        if check_in:
            deliver(checked_in(booking))
        return session_id

    return make


# -- callers ---------------------------------------------------------------------------------


nurse = caller("rn-cleo", "nurse", [SITE])
prescriber = caller("rx-ada", "prescriber", [SITE])
device = caller("gw-bed-7", "device", [SITE])
therapist = caller("th-ben", "therapist", [SITE])


# -- requests ----------------------------------------------------------------------------------


# The request bodies the end-to-end window uses too: ESKETAMINE, FIRST_DEVICE (SPR-PRE-3
# and SPR-PRE-7 answered with the first device), STABLE (every discharge criterion in range
# of the baseline, KET-DIS-2/3/4, SPR-GOAL), SIGNED (a prescriber's signing assessment).
IV_KETAMINE: dict[str, Any] = IV
IM_KETAMINE: dict[str, Any] = {**IV, "route": "im"}


@dataclass
class Monitoring:
    """Drives one session over HTTP."""

    client: TestClient
    headers: Headers
    prescriber: Headers

    def vitals(self, session_id: str = "ses-1", **body: Any) -> Any:
        return self.client.post(f"/sessions/{session_id}/vitals", json=body, headers=self.headers)

    def ok_vitals(self, session_id: str = "ses-1", **body: Any) -> dict[str, Any]:
        response = self.vitals(session_id, **body)
        assert response.status_code in (200, 201), response.text
        result: dict[str, Any] = response.json()
        return result

    def dose(self, session_id: str = "ses-1", **body: Any) -> Any:
        return self.client.post(f"/sessions/{session_id}/doses", json=body, headers=self.headers)

    def discharge(self, session_id: str = "ses-1") -> Any:
        return self.client.post(f"/sessions/{session_id}/discharge", headers=self.headers)

    def first_device(self, session_id: str = "ses-1", at: str | None = None, **extra: Any) -> Any:
        """Esketamine device 1 as the gates want it: a BP before it (SPR-PRE-4), the
        SPR-PRE-3/7 answers with it."""
        given = datetime.fromisoformat(at) if at else now()
        self.ok_vitals(
            session_id,
            bp_systolic=124,
            bp_diastolic=78,
            recorded_at=iso(given - timedelta(minutes=1)),
        )
        body = {**ESKETAMINE, "device_number": 1, **FIRST_DEVICE, **extra}
        if at:
            body["administered_at"] = at
        return self.dose(session_id, **body)

    def assess(self, session_id: str = "ses-1", **overrides: Any) -> Any:
        return self.client.post(
            f"/sessions/{session_id}/stability-assessment",
            json={**SIGNED, **overrides},
            headers=self.prescriber,
        )

    def ready(self, session_id: str = "ses-1", **reading: Any) -> None:
        """Every discharge criterion charted now: a full reading and a signed assessment."""
        self.ok_vitals(session_id, **{**STABLE, **reading})
        response = self.assess(session_id)
        assert response.status_code == 201, response.text

    def decide(self, session_id: str = "ses-1", **body: Any) -> Any:
        return self.client.post(
            f"/sessions/{session_id}/predose-decision", json=body, headers=self.prescriber
        )

    def session(self, session_id: str = "ses-1") -> dict[str, Any]:
        response = self.client.get(f"/sessions/{session_id}", headers=self.headers)
        assert response.status_code == 200, response.text
        result: dict[str, Any] = response.json()
        return result


@pytest.fixture
def mon(client: TestClient, nurse: Headers, prescriber: Headers) -> Monitoring:
    return Monitoring(client, nurse, prescriber)


@pytest.fixture
def dosed_session(open_session: Callable[..., str], mon: Monitoring) -> Callable[..., str]:
    """An open window with an IM ketamine dose given 30 minutes ago: readings from
    now on are intra-session (not pre-dose)."""

    def make(session_id: str = "ses-1", **kwargs: Any) -> str:
        open_session(session_id, **kwargs)
        response = mon.dose(session_id, **IM_KETAMINE, administered_at=ago(minutes=30))
        assert response.status_code == 201, response.text
        return session_id

    return make


# -- what was stored and published --------------------------------------------------------------


@pytest.fixture
def outbox(db: Path) -> Callable[..., list[dict[str, Any]]]:
    """The outbox's event payloads in publishing order, optionally of some types."""

    return partial(outbox_payloads, db)


TABLES = (
    "readings",
    "doses",
    "alerts",
    "predose_decisions",
    "measures",
    "safety_concerns",
    "stability_assessments",
    "plans",
    "outbox_messages",
    "scheduled_jobs",
)


@pytest.fixture
def counts(db: Path) -> Callable[[], dict[str, int]]:
    """Row counts of every table a request could write to."""

    return partial(table_counts, db, TABLES)


@pytest.fixture
def deliver_into(tmp_path: Path) -> Iterator[Callable[..., Monitoring]]:
    """A monitoring app with these rules (RULES_FILE) and an open window `ses-1` of
    `route` (esketamine unless said otherwise), driven by a nurse."""
    with ExitStack() as stack:

        def make(rules: dict[str, Any], route: Route = Route.INTRANASAL_ESKETAMINE) -> Monitoring:
            path = tmp_path / "rules.json"
            path.write_text(json.dumps(rules))
            client = stack.enter_context(
                service_client(MonitoringSettings, build, tmp_path, rules_file=path)
            )
            deliver = delivery(client, "monitoring", HANDLERS)
            booking = scheduled("ses-1")
            for event in (
                plan_created("plan-ses-1", route),
                screened(),
                booking,
                checked_in(booking),
            ):
                deliver(event)
            return Monitoring(
                client, token("rn-cleo", "nurse", [SITE]), token("rx-ada", "prescriber", [SITE])
            )

        yield make
