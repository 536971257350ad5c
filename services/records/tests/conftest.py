"""Fixtures for records' unit tests: the app in-process on a throw-away SQLite
database, events handed to its own consumer path (decoded against the contract,
inbox-guarded), and its durable timers fired at a chosen time.

`Story` builds one esketamine patient's events (intake, scheduling, monitoring,
notifications) with fixed times; tests type it as `Any` (a conftest class cannot
be imported by test modules under --import-mode=importlib).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from functools import partial
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from kap_records.bootstrap import build
from kap_records.config import RecordsSettings
from kap_records.entrypoints.stream import live_handlers, timers
from kap_records.entrypoints.vitals_batch import ReadingsBatchConsumer
from kap_shared.events import (
    AlertAcknowledged,
    DischargeCleared,
    DoseAdministered,
    Envelope,
    NotificationSent,
    PatientReferred,
    PatientScreened,
    PhaseAdvanced,
    SessionCheckedIn,
    SessionScheduled,
    TreatmentPlanCreated,
    VitalsAlert,
    VitalsAlertResolved,
    VitalsRecorded,
    new_id,
)
from kap_shared.events.enums import (
    Agent,
    Channel,
    ConcomitantMedicationClass,
    Dissociation,
    Phase,
    Route,
    ScreeningOutcome,
    Severity,
)
from kap_shared.events.intake import PatientReferredData, PatientScreenedData
from kap_shared.events.monitoring import (
    DischargeClearedData,
    DoseAdministeredData,
    VitalsAlertData,
    VitalsAlertResolvedData,
    VitalsRecordedData,
)
from kap_shared.events.notifications import AlertAcknowledgedData, NotificationSentData
from kap_shared.events.scheduling import (
    PhaseAdvancedData,
    SessionCheckedInData,
    SessionScheduledData,
    TreatmentPlanCreatedData,
)
from kap_shared.testing import FakeRecord, database_file, kafka_headers, service_client, token
from kap_shared.testing_app import (
    app_of,
    delivery,
    outbox_payloads,
    screening_baseline,
    timer_firing,
)

SITE = "site-a"
COORDINATOR = token("co-amy", "coordinator", [SITE])
PRESCRIBER = token("rx-ada", "prescriber", [SITE])
THERAPIST = token("th-ben", "therapist", [SITE])
NURSE = token("rn-dee", "nurse", [SITE])
OTHER_SITE = token("co-zed", "coordinator", ["site-b"])
DEVICE = token("dev-1", "device", [SITE])
# A month ahead: no timer set by the tests is ever due for the service's own worker.
T0 = datetime.combine(date.today() + timedelta(days=30), time(14, 0), UTC)


@pytest.fixture
def rules_file() -> Path | None:
    return None


@pytest.fixture
def client(tmp_path: Path, rules_file: Path | None) -> Iterator[TestClient]:
    overrides: dict[str, Any] = {"rules_file": rules_file} if rules_file else {}
    with service_client(RecordsSettings, build, tmp_path, **overrides) as test_client:
        yield test_client


db = database_file(RecordsSettings)


@pytest.fixture
def deliver(client: TestClient) -> Callable[[Envelope], bool]:
    """Hand an event to records as the live service reads it: a reading to the readings'
    batch consumer (a batch of one), any other event to the event consumer."""
    events = delivery(client, "records", live_handlers(app_of(client).state.rules))
    readings: ReadingsBatchConsumer = app_of(client).state.readings_consumer

    def deliver(event: Envelope) -> bool:
        if not isinstance(event, VitalsRecorded):
            return events(event)
        record = FakeRecord(event.to_json(), key=event.key, headers=kafka_headers(event))
        assert client.portal is not None
        outcome = client.portal.call(readings.process, [record])
        assert not outcome.dead, outcome.dead
        return bool(outcome.stored)

    return deliver


@pytest.fixture
def fire_timers(client: TestClient) -> Callable[[datetime], int]:
    return timer_firing(client, timers(app_of(client).state.rules))


@pytest.fixture
def outbox(db: Path) -> Callable[[], list[dict[str, Any]]]:
    return partial(outbox_payloads, db)


@dataclass
class Story:
    """One esketamine patient's events, delivered to records as Kafka would."""

    deliver: Callable[[Envelope], bool]
    patient_id: str = "pt-1"
    correlation_id: str = "episode-pt-1"
    plan_id: str = "plan-1"
    delivered: list[Envelope] = field(default_factory=list)

    def _send(self, cls: type[Envelope], data: Any, at: datetime, **extra: Any) -> Any:
        event = cls(
            producer=extra.pop("producer", "test"),
            site_id=SITE,
            patient_id=self.patient_id,
            correlation_id=self.correlation_id,
            occurred_at=at,
            data=data,
            **extra,
        )
        assert self.deliver(event)
        self.delivered.append(event)
        return event

    def intake_and_plan(self, at: datetime) -> None:
        self._send(
            PatientReferred, PatientReferredData(indications=["trd"]), at - timedelta(days=9)
        )
        self._send(
            PatientScreened,
            PatientScreenedData(
                screening_id="scr-1",
                outcome=ScreeningOutcome.ELIGIBLE,
                route=Route.INTRANASAL_ESKETAMINE,
                indications=["trd"],
                baseline=screening_baseline(),
            ),
            at - timedelta(days=8),
        )
        self._send(
            TreatmentPlanCreated,
            TreatmentPlanCreatedData(
                plan_id=self.plan_id,
                route=Route.INTRANASAL_ESKETAMINE,
                protocol="esketamine_trd",
                prescriber_id="rx-ada",
                therapist_id="th-ben",
                planned_dosing_sessions=12,
            ),
            at - timedelta(days=8),
        )
        self._send(
            PhaseAdvanced,
            PhaseAdvancedData(plan_id=self.plan_id, to_phase=Phase.PREPARATION),
            at - timedelta(days=8),
        )

    def dosing_session(
        self,
        session_id: str,
        at: datetime,
        *,
        sequence: int = 1,
        with_40_min_bp: bool = True,
        lot_number: str | None = "LOT-A1",
        signed_by: str | None = "rn-dee",
        critical_alert: bool = False,
    ) -> dict[str, Any]:
        """Booked, checked in, two devices, vitals, discharge 125 min after the first device."""
        self._send(
            SessionScheduled,
            SessionScheduledData(
                session_id=session_id,
                plan_id=self.plan_id,
                phase=Phase.DOSING,
                sequence=sequence,
                starts_at=at - timedelta(minutes=15),
                ends_at=at + timedelta(minutes=135),
                room_id="room-a1",
                prescriber_id="rx-ada",
                therapist_id="th-ben",
                nurse_id="rn-dee",
            ),
            at - timedelta(days=3),
        )
        checked_in = self._send(
            SessionCheckedIn,
            SessionCheckedInData(
                session_id=session_id, phase=Phase.DOSING, checked_in_at=at - timedelta(minutes=20)
            ),
            at - timedelta(minutes=20),
        )
        if sequence == 1:
            self._send(
                PhaseAdvanced,
                PhaseAdvancedData(
                    plan_id=self.plan_id, from_phase=Phase.PREPARATION, to_phase=Phase.DOSING
                ),
                at - timedelta(minutes=20),
                causation_id=str(checked_in.event_id),
            )
        self.reading(session_id, at - timedelta(minutes=10), bp=(128, 80), spo2=98, moaas=5)
        for device in (1, 2):
            self._send(
                DoseAdministered,
                DoseAdministeredData(
                    session_id=session_id,
                    administered_at=at + timedelta(minutes=5 * (device - 1)),
                    route=Route.INTRANASAL_ESKETAMINE,
                    agent=Agent.ESKETAMINE,
                    dose_mg=28,
                    device_number=device,
                    lot_number=lot_number,
                    concomitant_medications=[ConcomitantMedicationClass.BENZODIAZEPINE],
                ),
                at + timedelta(minutes=5 * (device - 1)),
            )
        self.reading(
            session_id, at + timedelta(minutes=20), spo2=96, moaas=3, dissociation="moderate"
        )
        chain: dict[str, Any] = {}
        if with_40_min_bp:
            reading = self.reading(
                session_id,
                at + timedelta(minutes=41),
                bp=(150, 92) if not critical_alert else (186, 112),
                spo2=97,
                moaas=4,
            )
            if critical_alert:
                chain = self.alert_chain(session_id, reading, at + timedelta(minutes=41))
        self.reading(
            session_id,
            at + timedelta(minutes=115),
            bp=(132, 84),
            spo2=99,
            moaas=5,
            dissociation="none",
        )
        self._send(
            DischargeCleared,
            DischargeClearedData(
                session_id=session_id,
                first_dose_at=at,
                cleared_at=at + timedelta(minutes=125),
                observed_minutes=125,
                signed_by=signed_by,
            ),
            at + timedelta(minutes=125),
        )
        return chain

    def reading(
        self,
        session_id: str,
        at: datetime,
        *,
        bp: tuple[int, int] | None = None,
        spo2: float | None = None,
        moaas: int | None = None,
        dissociation: str | None = None,
    ) -> VitalsRecorded:
        data = VitalsRecordedData(
            session_id=session_id,
            reading_id=new_id(),
            recorded_at=at,
            bp_systolic=bp[0] if bp else None,
            bp_diastolic=bp[1] if bp else None,
            heart_rate=80,
            spo2=spo2,
            sedation_moaas=moaas,
            dissociation=Dissociation(dissociation) if dissociation else None,
        )
        event: VitalsRecorded = self._send(VitalsRecorded, data, at)
        return event

    def alert_chain(
        self, session_id: str, reading: VitalsRecorded, at: datetime
    ) -> dict[str, Envelope]:
        alert = self._send(
            VitalsAlert,
            VitalsAlertData(
                alert_id="alert-1",
                session_id=session_id,
                severity=Severity.CRITICAL,
                rule_id="SPR-MON-6",
                metric="bp_systolic",
                value=186,
                threshold=180,
                message="Patient Zelphine BP high",  # free text: never copied
            ),
            at,
            causation_id=str(reading.event_id),
        )
        # The prescriber's notification of the alert, sent and then acknowledged.
        notification = {"notification_id": "n-1", "source_event_id": str(alert.event_id)}
        sent = self._send(
            NotificationSent,
            NotificationSentData(
                **notification,
                recipient_id="rx-ada",
                channel=Channel.IN_APP,
                priority="stat",
            ),
            at + timedelta(seconds=1),
            causation_id=str(alert.event_id),
        )
        ack = self._send(
            AlertAcknowledged,
            AlertAcknowledgedData(
                **notification,
                acknowledged_by="rx-ada",
                acknowledged_at=at + timedelta(minutes=2),
            ),
            at + timedelta(minutes=2),
            causation_id=str(alert.event_id),
        )
        resolved = self._send(
            VitalsAlertResolved,
            VitalsAlertResolvedData(
                alert_id="alert-1", session_id=session_id, resolved_at=at + timedelta(minutes=10)
            ),
            at + timedelta(minutes=10),
            causation_id=str(alert.event_id),
        )
        return {"reading": reading, "alert": alert, "sent": sent, "ack": ack, "resolved": resolved}


@pytest.fixture
def story(deliver: Callable[[Envelope], bool]) -> Story:
    return Story(deliver)
