"""POST /sessions/{id}/doses and /predose-decision (SPR-PRE-4, SPR-PRE-5), and the
SPR-MON-1 BP-check timers a first dose sets."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient

from kap_monitoring.bootstrap import build
from kap_monitoring.config import MonitoringSettings
from kap_monitoring.domain.rules import MonitoringRules
from kap_monitoring.handlers.observations import timer_handlers
from kap_shared.messaging.timers import TimerWorker
from kap_shared.rules import SiteRules
from kap_shared.testing import rows, service_client, token

from .conftest import (
    ESKETAMINE,
    IV_KETAMINE,
    SITE,
    Monitoring,
    ago,
    assert_error,
    checked_in,
    now,
    runtime_of,
    scheduled,
)

Outbox = Callable[..., list[dict[str, Any]]]
Counts = Callable[[], dict[str, int]]


def parse(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def test_a_dose_is_recorded_and_published(
    mon: Monitoring, open_session: Callable[..., str], outbox: Outbox
) -> None:
    open_session()
    given = ago(minutes=3)
    response = mon.dose(**ESKETAMINE, device_number=1, administered_at=given)
    assert response.status_code == 201, response.text
    dose = response.json()
    assert (dose["agent"], dose["device_number"], dose["recorded_by"]) == (
        "esketamine",
        1,
        "rn-cleo",
    )
    [event] = outbox("DoseAdministered")
    assert event["data"] == {
        "session_id": "ses-1",
        "administered_at": given.replace("+00:00", "Z"),
        "route": "intranasal_esketamine",
        "agent": "esketamine",
        "dose_mg": 28.0,
        "device_number": 1,
        # Optional fields this request did not carry (CONTRACT 6.2 and additive ones).
        "lot_number": None,
        "charted_at": None,
        "dosing_ended_at": None,
        "concomitant_medications": None,
    }
    assert (event["producer"], event["patient_id"], event["site_id"]) == (
        "monitoring",
        "pt-1",
        SITE,
    )
    session = mon.session()
    assert session["first_dose_at"] == event["data"]["administered_at"]
    assert [d["dose_id"] for d in session["doses"]] == [dose["dose_id"]]


def test_administered_at_defaults_to_now(mon: Monitoring, open_session: Callable[..., str]) -> None:
    open_session()
    before = now()
    dose = mon.dose(**IV_KETAMINE).json()
    assert before <= parse(dose["administered_at"]) <= now()
    assert dose["ends_at"] == dose["administered_at"]


def test_each_esketamine_device_once_and_one_agent_per_session(
    mon: Monitoring, open_session: Callable[..., str], counts: Counts
) -> None:
    open_session()
    assert mon.dose(**ESKETAMINE, device_number=1).status_code == 201
    assert mon.dose(**ESKETAMINE, device_number=2).status_code == 201
    before = counts()
    assert_error(mon.dose(**ESKETAMINE, device_number=2), 409, "MON-DOSE-1")
    assert_error(mon.dose(**IV_KETAMINE), 409, "MON-DOSE-1")
    assert counts() == before


def test_doses_need_an_open_window(mon: Monitoring, open_session: Callable[..., str]) -> None:
    open_session("ses-booked", check_in=False)
    assert_error(mon.dose("ses-booked", **IV_KETAMINE), 409, "MON-WINDOW-1")
    assert_error(mon.dose("ses-nope", **IV_KETAMINE), 404, "not_found")


# -- SPR-PRE-5 ------------------------------------------------------------------------------


def test_SPR_PRE_5_140_90_before_dosing_needs_no_decision(
    mon: Monitoring, open_session: Callable[..., str], outbox: Outbox
) -> None:
    open_session()
    assert mon.ok_vitals(bp_systolic=140, bp_diastolic=90)["alerts"] == []
    assert mon.dose(**IV_KETAMINE).status_code == 201


def test_SPR_PRE_5_141_90_before_dosing_blocks_doses_until_a_prescriber_decides(
    mon: Monitoring, open_session: Callable[..., str], outbox: Outbox, counts: Counts
) -> None:
    open_session()
    [alert] = mon.ok_vitals(bp_systolic=141, bp_diastolic=90)["alerts"]
    assert (alert["rule_id"], alert["severity"]) == ("SPR-PRE-5", "warning")
    assert "proceed or defer" in alert["message"]
    assert mon.session()["predose_decision_pending"] is True
    before = counts()
    assert_error(mon.dose(**IV_KETAMINE), 409, "SPR-PRE-5")
    assert counts() == before

    decision = mon.decide(decision="proceed", reason="usual_antihypertensive_taken", note="ok")
    assert decision.status_code == 201, decision.text
    assert decision.json()["decided_by"] == "rx-ada"
    [resolved] = outbox("VitalsAlertResolved")
    assert resolved["data"]["alert_id"] == alert["alert_id"]
    assert mon.dose(**IV_KETAMINE).status_code == 201


def test_SPR_PRE_5_defer_keeps_doses_refused_until_a_later_proceed(
    mon: Monitoring, open_session: Callable[..., str]
) -> None:
    open_session()
    mon.ok_vitals(bp_systolic=150, bp_diastolic=96)
    assert mon.decide(decision="defer", reason="recheck_later").status_code == 201
    error = assert_error(mon.dose(**IV_KETAMINE), 409, "SPR-PRE-5")
    assert "deferred" in error["message"]
    mon.ok_vitals(bp_systolic=132, bp_diastolic=84)  # recheck in range: still deferred
    assert_error(mon.dose(**IV_KETAMINE), 409, "SPR-PRE-5")
    assert mon.decide(decision="proceed", reason="bp_controlled_on_recheck").status_code == 201
    assert mon.dose(**IV_KETAMINE).status_code == 201
    assert [d["decision"] for d in mon.session()["decisions"]] == ["defer", "proceed"]


def test_SPR_PRE_5_a_new_elevated_reading_after_a_decision_needs_a_new_one(
    mon: Monitoring, open_session: Callable[..., str]
) -> None:
    open_session()
    mon.ok_vitals(bp_systolic=150, bp_diastolic=96)
    mon.decide(decision="proceed", reason="benefit_outweighs_risk")
    assert len(mon.ok_vitals(bp_systolic=178, bp_diastolic=104)["alerts"]) == 1
    assert_error(mon.dose(**IV_KETAMINE), 409, "SPR-PRE-5")


def test_SPR_PRE_5_decisions_only_when_one_is_awaited(
    mon: Monitoring, open_session: Callable[..., str], counts: Counts
) -> None:
    open_session()
    before = counts()
    assert_error(mon.decide(decision="proceed", reason="other"), 409, "SPR-PRE-5")
    assert counts() == before
    mon.dose(**IV_KETAMINE, administered_at=ago(minutes=5))
    mon.ok_vitals(bp_systolic=150, bp_diastolic=96)  # after the dose: not pre-dose
    assert mon.session()["predose_decision_pending"] is False
    assert_error(mon.decide(decision="proceed", reason="other"), 409, "SPR-PRE-5")


def test_SPR_PRE_5_a_late_pre_dose_reading_is_flagged_but_blocks_nothing(
    mon: Monitoring, open_session: Callable[..., str]
) -> None:
    open_session()
    mon.dose(**IV_KETAMINE, administered_at=ago(minutes=5))
    late = mon.ok_vitals(bp_systolic=150, bp_diastolic=96, recorded_at=ago(minutes=20))
    assert [a["rule_id"] for a in late["alerts"]] == ["SPR-PRE-5"]
    assert mon.session()["predose_decision_pending"] is False
    assert mon.dose(**IV_KETAMINE).status_code == 201


def test_SPR_PRE_4_a_site_may_require_a_pre_dose_bp(tmp_path: Path) -> None:
    rules = tmp_path / "rules.json"
    rules.write_text(json.dumps({"network": {"predose_bp_required": True}}))
    with service_client(MonitoringSettings, build, tmp_path, rules_file=rules) as client:
        _open(client)
        nurse = token("rn-1", "nurse", [SITE])
        mon = Monitoring(client, nurse, nurse)
        assert_error(mon.dose(**IV_KETAMINE), 409, "SPR-PRE-4")
        mon.ok_vitals(bp_systolic=122, bp_diastolic=80, recorded_at=ago(minutes=2))
        assert mon.dose(**IV_KETAMINE).status_code == 201


def _open(client: TestClient, session_id: str = "ses-1") -> None:
    from kap_monitoring.entrypoints.stream import HANDLERS
    from kap_shared.messaging.consumer import EventConsumer

    consumer = EventConsumer(
        group_id="monitoring", sessions=runtime_of(client).sessions, handlers=HANDLERS
    )
    assert client.portal is not None
    client.portal.call(consumer.handle, scheduled(session_id))
    client.portal.call(consumer.handle, checked_in(session_id))


# -- SPR-MON-1 ------------------------------------------------------------------------------


def jobs(db: Path) -> dict[str, tuple[str, str]]:
    return {
        kind: (status, str(due))
        for kind, status, due in rows(db, "SELECT kind, status, due_at FROM scheduled_jobs")
    }


def fire(client: TestClient, at: datetime) -> int:
    worker = TimerWorker(
        runtime_of(client).sessions,
        timer_handlers(SiteRules(MonitoringRules())),
        clock=lambda: at,
    )
    assert client.portal is not None
    fired: int = client.portal.call(worker.fire_due)
    return fired


def test_SPR_MON_1_the_first_dose_sets_a_reminder_at_35_and_an_overdue_at_50_minutes(
    client: TestClient, mon: Monitoring, open_session: Callable[..., str], db: Path, outbox: Outbox
) -> None:
    open_session()
    given = now() - timedelta(minutes=1)
    mon.dose(**IV_KETAMINE, administered_at=given.isoformat())
    status = jobs(db)
    assert set(status) == {"bp_check_40min_reminder", "bp_check_40min_overdue"}
    assert all(s == "pending" for s, _ in status.values())

    assert fire(client, given + timedelta(minutes=34, seconds=59)) == 0
    assert fire(client, given + timedelta(minutes=35)) == 1
    [reminder] = outbox("ObservationDue")
    assert reminder["data"]["kind"] == "bp_check_40min"
    assert parse(reminder["data"]["due_at"]) == given + timedelta(minutes=40)
    assert fire(client, given + timedelta(minutes=50)) == 1
    overdue = outbox("ObservationDue")[-1]
    assert overdue["data"]["kind"] == "bp_check_40min_overdue"
    assert parse(overdue["data"]["due_at"]) == given + timedelta(minutes=40)
    assert fire(client, given + timedelta(hours=3)) == 0  # each fires once


def test_SPR_MON_1_a_bp_in_the_window_cancels_both_timers(
    client: TestClient, mon: Monitoring, open_session: Callable[..., str], db: Path, outbox: Outbox
) -> None:
    open_session()
    given = now() - timedelta(minutes=41)
    mon.dose(**IV_KETAMINE, administered_at=given.isoformat())
    assert jobs(db)["bp_check_40min_reminder"][0] == "pending"  # due already, not yet fired
    mon.ok_vitals(heart_rate=80, recorded_at=ago(minutes=1))  # not a BP
    assert mon.session()["bp_check_done"] is False
    mon.ok_vitals(bp_systolic=130, bp_diastolic=82, recorded_at=ago(minutes=1))
    assert mon.session()["bp_check_done"] is True
    assert {s for s, _ in jobs(db).values()} == {"cancelled"}
    assert fire(client, given + timedelta(hours=2)) == 0
    assert outbox("ObservationDue") == []


def test_SPR_MON_1_a_bp_outside_the_window_does_not_count(
    mon: Monitoring, open_session: Callable[..., str], db: Path
) -> None:
    open_session()
    given = now() - timedelta(minutes=29)
    mon.dose(**IV_KETAMINE, administered_at=given.isoformat())
    mon.ok_vitals(bp_systolic=130, bp_diastolic=82)  # 29 min after: before the window
    assert mon.session()["bp_check_done"] is False
    assert {s for s, _ in jobs(db).values()} == {"pending"}


def test_SPR_MON_1_a_dose_charted_late_only_sets_the_overdue_notice(
    client: TestClient, mon: Monitoring, open_session: Callable[..., str], db: Path, outbox: Outbox
) -> None:
    open_session()
    mon.dose(**ESKETAMINE, device_number=1, administered_at=ago(minutes=119))
    assert set(jobs(db)) == {"bp_check_40min_overdue"}
    assert fire(client, now()) == 1
    assert [e["data"]["kind"] for e in outbox("ObservationDue")] == ["bp_check_40min_overdue"]


def test_SPR_MON_1_an_earlier_dose_moves_the_timers(
    mon: Monitoring, open_session: Callable[..., str], db: Path
) -> None:
    open_session()
    mon.dose(**ESKETAMINE, device_number=2, administered_at=ago(minutes=5))
    first = jobs(db)["bp_check_40min_overdue"][1]
    mon.dose(**ESKETAMINE, device_number=1, administered_at=ago(minutes=10))
    assert jobs(db)["bp_check_40min_overdue"][1] < first
    assert len(rows(db, "SELECT * FROM scheduled_jobs")) == 2


def test_SPR_MON_1_a_bp_charted_before_the_dose_is_recorded_satisfies_it_at_once(
    mon: Monitoring, open_session: Callable[..., str], db: Path
) -> None:
    open_session()
    mon.ok_vitals(bp_systolic=128, bp_diastolic=80, recorded_at=ago(minutes=80))
    mon.dose(**ESKETAMINE, device_number=1, administered_at=ago(minutes=120))
    assert mon.session()["bp_check_done"] is True
    assert jobs(db) == {}
