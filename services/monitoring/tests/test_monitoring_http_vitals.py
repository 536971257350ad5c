"""POST /sessions/{id}/vitals: validate, evaluate and store in one transaction,
publish VitalsRecorded (and what it triggers) through the outbox."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import event as sa_event

from kap_monitoring.bootstrap import build
from kap_monitoring.config import MonitoringSettings
from kap_shared.events.enums import Phase
from kap_shared.testing import rows, service_client, token
from kap_shared.testing_app import delivery

from .clock import ago
from .conftest import SITE, Counts, Deliver, Headers, Monitoring, Outbox, assert_error, scheduled


def test_a_reading_is_stored_and_published_as_VitalsRecorded(
    mon: Monitoring, open_session: Callable[..., str], outbox: Outbox, db: Path
) -> None:
    open_session()
    response = mon.vitals(
        reading_id="r-1",
        recorded_at=ago(minutes=2),
        bp_systolic=128,
        bp_diastolic=82,
        heart_rate=76,
        spo2=98,
        respiratory_rate=14,
        sedation_moaas=5,
    )
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["reading_id"] == "r-1"
    assert (body["duplicate"], body["alerts"], body["observations"]) == (False, [], [])
    [event] = outbox()
    assert event["event_type"] == "VitalsRecorded"
    assert (event["producer"], event["site_id"], event["patient_id"]) == (
        "monitoring",
        SITE,
        "pt-1",
    )
    assert event["correlation_id"] == "episode-pt-1"
    assert event["data"]["reading_id"] == "r-1"
    assert event["data"]["spo2"] == 98
    [(topic,)] = rows(db, "SELECT topic FROM outbox_messages")
    assert topic == "kap.monitoring.vitals.v1"
    assert rows(db, "SELECT reading_id, session_id, source, heart_rate FROM readings") == [
        ("r-1", "ses-1", "http", 76)
    ]
    assert mon.session()["latest"]["heart_rate"]["value"] == 76


def test_KET_MON_BP_two_readings_within_5_minutes_raise_exactly_one_alert(
    mon: Monitoring, dosed_session: Callable[..., str], outbox: Outbox
) -> None:
    dosed_session()
    first = mon.ok_vitals(bp_systolic=185, bp_diastolic=112, recorded_at=ago(minutes=4))
    assert first["alerts"] == []
    assert [o["kind"] for o in first["observations"]] == ["bp_recheck"]
    second = mon.ok_vitals(bp_systolic=190, bp_diastolic=114, recorded_at=ago(minutes=1))
    [alert] = second["alerts"]
    assert (alert["rule_id"], alert["severity"], alert["status"]) == (
        "KET-MON-BP",
        "critical",
        "open",
    )
    third = mon.ok_vitals(bp_systolic=195, bp_diastolic=116)
    assert third["alerts"] == []  # one open alert per rule and session: no storm

    alerts = outbox("VitalsAlert")
    assert len(alerts) == 1
    data = alerts[0]["data"]
    assert data == {
        "alert_id": alert["alert_id"],
        "session_id": "ses-1",
        "severity": "critical",
        "rule_id": "KET-MON-BP",
        "metric": "bp_systolic",
        "value": 190.0,
        "threshold": 180.0,
        "message": alert["message"],
    }
    # The alert is caused by the reading that completed the pair.
    recorded = outbox("VitalsRecorded")
    assert alerts[0]["causation_id"] == recorded[1]["event_id"]
    [due] = outbox("ObservationDue")
    assert due["data"]["kind"] == "bp_recheck"
    assert due["data"]["rule_id"] == "KET-MON-BP"  # its soft limit asks for the recheck

    resolved = mon.ok_vitals(bp_systolic=150, bp_diastolic=92)
    assert resolved["resolved_alert_ids"] == [alert["alert_id"]]
    [event] = outbox("VitalsAlertResolved")
    assert event["data"]["alert_id"] == alert["alert_id"]
    assert mon.session()["open_alerts"] == []


def test_alert_messages_carry_no_PHI(
    mon: Monitoring, dosed_session: Callable[..., str], outbox: Outbox
) -> None:
    dosed_session()
    mon.ok_vitals(spo2=85, symptoms=["chest_pain"], bp_systolic=150, bp_diastolic=90)
    for event in outbox():
        text = json.dumps(event)
        for phi in ("given_name", "family_name", "date_of_birth", "phone", "email"):
            assert phi not in text


def test_a_repeated_reading_id_has_no_second_effect(
    mon: Monitoring, open_session: Callable[..., str], outbox: Outbox, counts: Counts
) -> None:
    open_session()
    first = mon.vitals(reading_id="dev-42", spo2=85, recorded_at=ago(minutes=1))
    assert first.status_code == 201
    before = counts()

    again = mon.vitals(reading_id="dev-42", spo2=85)

    assert again.status_code == 200
    assert again.json()["duplicate"] is True
    assert again.json()["alerts"] == []
    assert again.json()["recorded_at"] == first.json()["recorded_at"]
    assert counts() == before
    assert len(outbox("VitalsAlert")) == 1


def test_a_reading_id_of_another_session_is_409(
    mon: Monitoring, open_session: Callable[..., str], counts: Counts
) -> None:
    open_session("ses-1")
    open_session("ses-2", patient_id="pt-2")
    mon.ok_vitals("ses-1", reading_id="dev-1", heart_rate=80)
    before = counts()
    assert_error(mon.vitals("ses-2", reading_id="dev-1", heart_rate=80), 409, "MON-READING-1")
    assert counts() == before


def test_readings_for_unknown_or_closed_sessions_are_refused(
    mon: Monitoring, open_session: Callable[..., str], deliver: Deliver, counts: Counts
) -> None:
    open_session("ses-open")
    open_session("ses-booked", check_in=False)
    open_session("ses-prep", phase=Phase.PREPARATION)
    before = counts()

    assert_error(mon.vitals("ses-unknown", heart_rate=80), 404, "not_found")
    booked = assert_error(mon.vitals("ses-booked", heart_rate=80), 409, "MON-WINDOW-1")
    assert "not checked in" in booked["message"]
    prep = assert_error(mon.vitals("ses-prep", heart_rate=80), 409, "MON-WINDOW-1")
    assert "preparation" in prep["message"]
    assert counts() == before


def test_late_readings_are_evaluated_by_recorded_at(
    mon: Monitoring, open_session: Callable[..., str], outbox: Outbox
) -> None:
    """HR above 120 from -10 to -6 min (4 min: no alert), in range at -3; a late
    reading at -5 completes 5 minutes above 120: the episode is alerted and, being
    already over, resolved in the same transaction."""
    open_session()
    for minute in (10, 9, 8, 7, 6):
        assert mon.ok_vitals(heart_rate=128, recorded_at=ago(minutes=minute))["alerts"] == []
    assert mon.ok_vitals(heart_rate=100, recorded_at=ago(minutes=3))["alerts"] == []

    late = mon.ok_vitals(heart_rate=126, recorded_at=ago(minutes=5))

    [alert] = late["alerts"]
    assert alert["rule_id"] == "KET-MON-HR"
    assert late["resolved_alert_ids"] == [alert["alert_id"]]
    assert [e["event_type"] for e in outbox("VitalsAlert", "VitalsAlertResolved")] == [
        "VitalsAlert",
        "VitalsAlertResolved",
    ]
    session = mon.session()
    assert session["open_alerts"] == []
    assert session["latest"]["heart_rate"]["value"] == 100  # latest by recorded_at


def test_a_late_reading_inside_an_alerted_episode_raises_nothing_new(
    mon: Monitoring, open_session: Callable[..., str], outbox: Outbox
) -> None:
    open_session()
    for minute in (10, 8, 6, 4):
        mon.ok_vitals(heart_rate=130, recorded_at=ago(minutes=minute))
    assert len(outbox("VitalsAlert")) == 1  # -10 .. -4 is 6 minutes

    late = mon.ok_vitals(heart_rate=131, recorded_at=ago(minutes=9))

    assert late["alerts"] == []
    assert late["resolved_alert_ids"] == []
    assert len(outbox("VitalsAlert")) == 1
    assert [a["rule_id"] for a in mon.session()["open_alerts"]] == ["KET-MON-HR"]


def test_a_late_reading_that_completes_nothing_changes_nothing(
    mon: Monitoring, open_session: Callable[..., str], outbox: Outbox
) -> None:
    open_session()
    mon.ok_vitals(spo2=97, recorded_at=ago(minutes=1))
    late = mon.ok_vitals(spo2=91, recorded_at=ago(minutes=2))
    assert late["alerts"] == []
    assert mon.session()["latest"]["spo2"]["value"] == 97
    assert outbox("VitalsAlert") == []


def test_KET_MON_SPO2_via_http_alerts_then_resolves(
    mon: Monitoring, open_session: Callable[..., str], outbox: Outbox
) -> None:
    open_session()
    assert mon.ok_vitals(spo2=90, recorded_at=ago(seconds=90))["alerts"] == []
    [alert] = mon.ok_vitals(spo2=89.9, recorded_at=ago(seconds=60))["alerts"]
    assert (alert["rule_id"], alert["value"], alert["threshold"]) == ("KET-MON-SPO2", 89.9, 90)
    assert mon.ok_vitals(spo2=91)["resolved_alert_ids"] == []  # 91 is still below 92
    assert mon.ok_vitals(spo2=96)["resolved_alert_ids"] == [alert["alert_id"]]


def test_SPR_MON_6_crisis_symptoms_raise_one_emergency_alert_until_resolved(
    client: TestClient,
    mon: Monitoring,
    dosed_session: Callable[..., str],
    outbox: Outbox,
    prescriber: Headers,
) -> None:
    dosed_session()
    [alert] = mon.ok_vitals(
        bp_systolic=150, bp_diastolic=95, symptoms=["nausea", "severe_headache"]
    )["alerts"]
    assert (alert["rule_id"], alert["severity"], alert["metric"]) == (
        "SPR-MON-6",
        "critical",
        "symptoms",
    )
    assert "severe_headache" in alert["message"]
    assert "nausea" not in alert["message"]
    assert "emergency" in alert["message"].lower()
    # Still open: a second report adds no alert; an empty symptom list resolves nothing.
    assert mon.ok_vitals(heart_rate=90, symptoms=["chest_pain"])["alerts"] == []
    assert mon.ok_vitals(heart_rate=90, symptoms=[])["resolved_alert_ids"] == []

    response = client.post(
        f"/sessions/ses-1/alerts/{alert['alert_id']}/resolve",
        json={"reason": "transferred_to_emergency_care", "note": "ambulance called by RN"},
        headers=prescriber,
    )
    assert response.status_code == 200, response.text
    assert response.json()["resolution"] == "prescriber:transferred_to_emergency_care"
    [resolved] = outbox("VitalsAlertResolved")
    assert "ambulance" not in json.dumps(resolved)  # the free-text note stays here
    assert len(mon.ok_vitals(heart_rate=90, symptoms=["vision_change"])["alerts"]) == 1


def test_prescriber_resolving_an_alert_does_not_re_alert_the_same_episode(
    client: TestClient, mon: Monitoring, open_session: Callable[..., str], prescriber: Headers
) -> None:
    open_session()
    [alert] = mon.ok_vitals(spo2=85, recorded_at=ago(minutes=3))["alerts"]
    resolve = client.post(
        f"/sessions/ses-1/alerts/{alert['alert_id']}/resolve",
        json={"reason": "artifact"},
        headers=prescriber,
    )
    assert resolve.status_code == 200
    assert mon.ok_vitals(spo2=86, recorded_at=ago(minutes=2))["alerts"] == []  # same episode
    mon.ok_vitals(spo2=97, recorded_at=ago(minutes=1))  # episode over
    assert len(mon.ok_vitals(spo2=85)["alerts"]) == 1  # a new episode
    again = client.post(
        f"/sessions/ses-1/alerts/{alert['alert_id']}/resolve",
        json={"reason": "artifact"},
        headers=prescriber,
    )
    assert_error(again, 409, "MON-ALERT-1")
    assert_error(
        client.post(
            "/sessions/ses-1/alerts/nope/resolve", json={"reason": "artifact"}, headers=prescriber
        ),
        404,
        "not_found",
    )


def test_devices_post_vitals_for_their_site(
    client: TestClient, open_session: Callable[..., str], device: Headers
) -> None:
    open_session()
    response = client.post("/sessions/ses-1/vitals", json={"spo2": 97}, headers=device)
    assert response.status_code == 201, response.text


def test_a_cancelled_session_refuses_readings(
    mon: Monitoring, open_session: Callable[..., str], deliver: Deliver
) -> None:
    from kap_shared.events import SessionCancelled
    from kap_shared.events.scheduling import SessionCancelledData

    open_session()
    deliver(
        SessionCancelled(
            producer="scheduling",
            site_id=SITE,
            patient_id="pt-1",
            correlation_id="episode-pt-1",
            data=SessionCancelledData(session_id="ses-1", phase=Phase.DOSING, reason="patient_ill"),
        )
    )
    error = assert_error(mon.vitals(heart_rate=80), 409, "MON-WINDOW-1")
    assert "cancelled" in error["message"]


def test_thresholds_come_from_the_rules_file_per_site(tmp_path: Path) -> None:
    rules = tmp_path / "rules.json"
    rules.write_text(json.dumps({"sites": {SITE: {"spo2_critical_below": 85}}}))
    with service_client(MonitoringSettings, build, tmp_path, rules_file=rules) as client:
        from kap_monitoring.entrypoints.stream import HANDLERS

        from .conftest import checked_in

        deliver = delivery(client, "monitoring", HANDLERS)
        booking = scheduled("ses-1")
        deliver(booking)
        deliver(checked_in(booking))
        headers = token("rn-1", "nurse", [SITE])
        response = client.post("/sessions/ses-1/vitals", json={"spo2": 88}, headers=headers)
        assert response.json()["alerts"] == []  # 88 is not below this site's 85
        response = client.post("/sessions/ses-1/vitals", json={"spo2": 84.9}, headers=headers)
        assert [a["rule_id"] for a in response.json()["alerts"]] == ["KET-MON-SPO2"]


def test_a_late_reading_revealing_an_earlier_episode_leaves_the_open_one_open(
    mon: Monitoring, open_session: Callable[..., str], outbox: Outbox
) -> None:
    open_session()
    for minute in (40, 39, 38, 37, 36):
        mon.ok_vitals(heart_rate=130, recorded_at=ago(minutes=minute))
    mon.ok_vitals(heart_rate=100, recorded_at=ago(minutes=34))
    for minute in range(20, 13, -1):
        mon.ok_vitals(heart_rate=130, recorded_at=ago(minutes=minute))
    [current] = mon.session()["open_alerts"]

    late = mon.ok_vitals(heart_rate=131, recorded_at=ago(minutes=35))

    [past] = late["alerts"]
    assert late["resolved_alert_ids"] == [past["alert_id"]]
    assert [a["alert_id"] for a in mon.session()["open_alerts"]] == [current["alert_id"]]
    assert len(outbox("VitalsAlert")) == 2
    assert mon.ok_vitals(heart_rate=90)["resolved_alert_ids"] == [current["alert_id"]]


def test_a_reading_reads_its_session_once_under_the_lock(
    client: TestClient, mon: Monitoring, open_session: Callable[..., str]
) -> None:
    """The 404/403/409 checks use the row the ingest locks and loads: no unlocked read
    of the session before it, and no read after it either (the lock's UPDATE hands the
    row back: two statements fewer a POST than a read, a lock and a locked read)."""
    open_session()
    statements: list[str] = []

    def record(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        if "monitored_sessions" in statement:
            statements.append(" ".join(statement.split()))

    engine = client.app.state.runtime.engine.sync_engine  # type: ignore[attr-defined]
    sa_event.listen(engine, "before_cursor_execute", record)
    try:
        mon.ok_vitals(heart_rate=80)
    finally:
        sa_event.remove(engine, "before_cursor_execute", record)
    assert statements[0].startswith("UPDATE monitored_sessions SET version"), statements
    assert " RETURNING " in statements[0], statements
    assert not [s for s in statements if s.startswith("SELECT")], statements
