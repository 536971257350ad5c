"""POST /sessions/{id}/discharge: 409 naming the rule while a criterion fails,
then DischargeCleared and a closed window."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from kap_shared.testing import rows

from .conftest import ESKETAMINE, IV_KETAMINE, Monitoring, ago, assert_error, now

Outbox = Callable[..., list[dict[str, Any]]]
Counts = Callable[[], dict[str, int]]


def parse(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def test_SPR_MON_3_esketamine_119_minutes_after_the_first_device_is_409(
    mon: Monitoring, open_session: Callable[..., str], counts: Counts, outbox: Outbox
) -> None:
    open_session()
    mon.dose(**ESKETAMINE, device_number=1, administered_at=ago(minutes=119))
    mon.dose(**ESKETAMINE, device_number=2, administered_at=ago(minutes=114))
    before = counts()

    error = assert_error(mon.discharge(), 409, "SPR-MON-3")

    [blocker] = error["details"]["blockers"]
    assert blocker["required_minutes"] == 120
    assert 119 <= blocker["observed_minutes"] < 120
    assert counts() == before
    assert outbox("DischargeCleared") == []
    assert mon.session()["status"] == "checked_in"


def test_SPR_MON_3_esketamine_120_minutes_after_the_first_device_is_cleared(
    mon: Monitoring, open_session: Callable[..., str], outbox: Outbox, db: Path
) -> None:
    open_session()
    first = ago(minutes=120)
    mon.dose(**ESKETAMINE, device_number=1, administered_at=first)
    mon.dose(**ESKETAMINE, device_number=2, administered_at=ago(minutes=115))
    assert mon.session()["discharge"] == {"allowed": True, "blockers": []}

    response = mon.discharge()

    assert response.status_code == 200, response.text
    body = response.json()
    assert body["status"] == "discharged"
    assert 120 <= body["observed_minutes"] < 121
    [event] = outbox("DischargeCleared")
    assert event["data"]["session_id"] == "ses-1"
    assert parse(event["data"]["first_dose_at"]) == parse(first)
    assert event["data"]["cleared_at"] == body["cleared_at"]
    assert event["data"]["observed_minutes"] == body["observed_minutes"]
    assert (event["patient_id"], event["producer"]) == ("pt-1", "monitoring")
    # The window is closed: no more readings, doses or discharges; timers cancelled.
    assert_error(mon.vitals(heart_rate=80), 409, "MON-WINDOW-1")
    assert_error(mon.dose(**ESKETAMINE, device_number=3), 409, "MON-WINDOW-1")
    assert_error(mon.discharge(), 409, "MON-WINDOW-1")
    assert {s for (s,) in rows(db, "SELECT status FROM scheduled_jobs")} == {"cancelled"}


def test_KET_DIS_6_iv_counts_from_the_end_of_the_infusion(
    mon: Monitoring, open_session: Callable[..., str]
) -> None:
    open_session("ses-a")
    start = now() - timedelta(minutes=100)
    mon.dose(
        "ses-a",
        **IV_KETAMINE,
        administered_at=start.isoformat(),
        ends_at=(start + timedelta(minutes=41)).isoformat(),  # ended 59 minutes ago
    )
    error = assert_error(mon.discharge("ses-a"), 409, "KET-DIS-6")
    assert "end of dosing" in error["message"]
    open_session("ses-b", patient_id="pt-2")
    mon.dose(
        "ses-b",
        **IV_KETAMINE,
        administered_at=start.isoformat(),
        ends_at=(start + timedelta(minutes=40)).isoformat(),  # ended 60 minutes ago
    )
    assert mon.discharge("ses-b").status_code == 200


def test_MON_DIS_1_no_dose_no_discharge(mon: Monitoring, open_session: Callable[..., str]) -> None:
    open_session()
    assert_error(mon.discharge(), 409, "MON-DIS-1")


def test_MON_DIS_2_an_open_critical_alert_blocks_until_values_are_back_in_range(
    mon: Monitoring, open_session: Callable[..., str]
) -> None:
    open_session()
    mon.dose(**IV_KETAMINE, administered_at=ago(minutes=90))
    mon.ok_vitals(bp_systolic=205, bp_diastolic=118, recorded_at=ago(minutes=2))
    error = assert_error(mon.discharge(), 409, "MON-DIS-2")
    assert "KET-MON-BP" in error["message"]
    mon.ok_vitals(bp_systolic=150, bp_diastolic=92, recorded_at=ago(minutes=1))
    assert mon.discharge().status_code == 200


def test_KET_DIS_2_latest_spo2_below_92_blocks(
    mon: Monitoring, open_session: Callable[..., str]
) -> None:
    open_session()
    mon.dose(**IV_KETAMINE, administered_at=ago(minutes=90))
    mon.ok_vitals(spo2=91, recorded_at=ago(seconds=30))  # one reading: no alert yet
    assert_error(mon.discharge(), 409, "KET-DIS-2")
    mon.ok_vitals(spo2=92)
    assert mon.discharge().status_code == 200


def test_KET_DIS_4_the_patient_must_be_alert(
    mon: Monitoring, open_session: Callable[..., str], outbox: Outbox
) -> None:
    open_session()
    mon.dose(**IV_KETAMINE, administered_at=ago(minutes=90))
    mon.ok_vitals(sedation_moaas=3, recorded_at=ago(minutes=2))  # KET-MON-SED-SOFT warning
    assert_error(mon.discharge(), 409, "KET-DIS-4")
    mon.ok_vitals(sedation_moaas=4, recorded_at=ago(minutes=1))
    blocked = assert_error(mon.discharge(), 409, "KET-DIS-4")
    assert "MOAA/S 4" in blocked["message"]
    mon.ok_vitals(sedation_moaas=5)
    assert mon.discharge().status_code == 200


def test_open_warnings_close_with_the_window(
    mon: Monitoring, open_session: Callable[..., str], outbox: Outbox, db: Path
) -> None:
    open_session()
    mon.dose(**IV_KETAMINE, administered_at=ago(minutes=90))
    late = mon.ok_vitals(bp_systolic=150, bp_diastolic=96, recorded_at=ago(minutes=100))
    [warning] = late["alerts"]  # a pre-dose BP charted late: flagged, blocks nothing
    assert (warning["rule_id"], warning["severity"]) == ("SPR-PRE-5", "warning")

    assert mon.discharge().status_code == 200

    [resolved] = outbox("VitalsAlertResolved")
    assert resolved["data"]["alert_id"] == warning["alert_id"]
    assert rows(db, "SELECT status, resolution, resolved_by FROM alerts") == [
        ("resolved", "discharged", "rn-cleo")
    ]
