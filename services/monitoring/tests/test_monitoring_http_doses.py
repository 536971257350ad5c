"""POST /sessions/{id}/doses and /predose-decision (SPR-PRE-4, SPR-PRE-5), and the
SPR-MON-1 BP-check timers a first dose sets."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient

from kap_monitoring.domain.rules import MonitoringRules
from kap_monitoring.handlers.observations import timer_handlers
from kap_shared.events.enums import Route
from kap_shared.rules import SiteRules
from kap_shared.testing import rows
from kap_shared.testing_app import timer_firing

from .clock import ago, now, parse
from .conftest import (
    ESKETAMINE,
    FIRST_DEVICE,
    IM_KETAMINE,
    IV_KETAMINE,
    SITE,
    Counts,
    Monitoring,
    Outbox,
    assert_error,
)


def test_a_dose_is_recorded_and_published(
    mon: Monitoring, open_session: Callable[..., str], outbox: Outbox
) -> None:
    open_session(route=Route.INTRANASAL_ESKETAMINE)
    given = ago(minutes=3)
    response = mon.first_device(
        at=given, concomitant_medications=["benzodiazepine"], lot_number="LOT-42"
    )
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
        "lot_number": "LOT-42",
        # Given 3 minutes ago, charted now: both clocks, kept apart.
        "charted_at": event["data"]["charted_at"],
        "dosing_ended_at": None,  # esketamine: SPR-MON-3 counts from the first device
        "concomitant_medications": ["benzodiazepine"],  # SPR-PRE-7
    }
    assert parse(event["data"]["charted_at"]) > parse(given)
    assert dose["charted_at"] == event["data"]["charted_at"].replace("Z", "Z")
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
    dose = mon.dose(**IM_KETAMINE).json()
    assert before <= parse(dose["administered_at"]) <= now()
    # IM: the route's configured default duration (0 minutes), said so.
    assert dose["dosing_ended_at"] == dose["administered_at"]
    assert dose["dosing_ended_source"] == "default"


def test_each_esketamine_device_once_and_one_agent_per_session(
    mon: Monitoring, open_session: Callable[..., str], counts: Counts
) -> None:
    open_session(route=Route.INTRANASAL_ESKETAMINE)
    assert mon.first_device(at=ago(minutes=10)).status_code == 201
    assert mon.dose(**ESKETAMINE, device_number=2).status_code == 201
    before = counts()
    assert_error(mon.dose(**ESKETAMINE, device_number=2), 409, "MON-DOSE-1")
    assert_error(mon.dose(**IM_KETAMINE), 409, "MON-DOSE-3")  # not the plan's route
    assert counts() == before


def test_doses_need_an_open_window(mon: Monitoring, open_session: Callable[..., str]) -> None:
    open_session("ses-booked", check_in=False)
    assert_error(mon.dose("ses-booked", **IM_KETAMINE), 409, "MON-WINDOW-1")
    assert_error(mon.dose("ses-nope", **IM_KETAMINE), 404, "not_found")


# -- SPR-PRE-5 ------------------------------------------------------------------------------


def test_SPR_PRE_5_140_90_before_dosing_needs_no_decision(
    mon: Monitoring, open_session: Callable[..., str], outbox: Outbox
) -> None:
    open_session()
    assert mon.ok_vitals(bp_systolic=140, bp_diastolic=90)["alerts"] == []
    assert mon.dose(**IM_KETAMINE).status_code == 201


def test_SPR_PRE_5_141_90_before_dosing_blocks_doses_until_a_prescriber_decides(
    mon: Monitoring, open_session: Callable[..., str], outbox: Outbox, counts: Counts
) -> None:
    open_session()
    [alert] = mon.ok_vitals(bp_systolic=141, bp_diastolic=90)["alerts"]
    assert (alert["rule_id"], alert["severity"]) == ("SPR-PRE-5", "warning")
    assert "proceed or defer" in alert["message"]
    assert mon.session()["predose_decision_pending"] is True
    before = counts()
    assert_error(mon.dose(**IM_KETAMINE), 409, "SPR-PRE-5")
    assert counts() == before

    decision = mon.decide(decision="proceed", reason="usual_antihypertensive_taken", note="ok")
    assert decision.status_code == 201, decision.text
    assert decision.json()["decided_by"] == "rx-ada"
    [resolved] = outbox("VitalsAlertResolved")
    assert resolved["data"]["alert_id"] == alert["alert_id"]
    assert mon.dose(**IM_KETAMINE).status_code == 201


def test_SPR_PRE_5_defer_keeps_doses_refused_until_a_later_proceed(
    mon: Monitoring, open_session: Callable[..., str]
) -> None:
    open_session()
    mon.ok_vitals(bp_systolic=150, bp_diastolic=96)
    assert mon.decide(decision="defer", reason="recheck_later").status_code == 201
    error = assert_error(mon.dose(**IM_KETAMINE), 409, "SPR-PRE-5")
    assert "deferred" in error["message"]
    mon.ok_vitals(bp_systolic=132, bp_diastolic=84)  # recheck in range: still deferred
    assert_error(mon.dose(**IM_KETAMINE), 409, "SPR-PRE-5")
    assert mon.decide(decision="proceed", reason="bp_controlled_on_recheck").status_code == 201
    assert mon.dose(**IM_KETAMINE).status_code == 201
    assert [d["decision"] for d in mon.session()["decisions"]] == ["defer", "proceed"]


def test_SPR_PRE_5_a_new_elevated_reading_after_a_decision_needs_a_new_one(
    mon: Monitoring, open_session: Callable[..., str]
) -> None:
    open_session()
    mon.ok_vitals(bp_systolic=150, bp_diastolic=96)
    mon.decide(decision="proceed", reason="benefit_outweighs_risk")
    assert len(mon.ok_vitals(bp_systolic=178, bp_diastolic=104)["alerts"]) == 1
    assert_error(mon.dose(**IM_KETAMINE), 409, "SPR-PRE-5")


def test_SPR_PRE_5_decisions_only_when_one_is_awaited(
    mon: Monitoring, open_session: Callable[..., str], counts: Counts
) -> None:
    open_session()
    before = counts()
    assert_error(mon.decide(decision="proceed", reason="other"), 409, "SPR-PRE-5")
    assert counts() == before
    mon.dose(**IM_KETAMINE, administered_at=ago(minutes=5))
    mon.ok_vitals(bp_systolic=150, bp_diastolic=96)  # after the dose: not pre-dose
    assert mon.session()["predose_decision_pending"] is False
    assert_error(mon.decide(decision="proceed", reason="other"), 409, "SPR-PRE-5")


def test_SPR_PRE_5_a_late_pre_dose_reading_is_flagged_but_blocks_nothing(
    mon: Monitoring, open_session: Callable[..., str]
) -> None:
    open_session()
    mon.dose(**IM_KETAMINE, administered_at=ago(minutes=5))
    late = mon.ok_vitals(bp_systolic=150, bp_diastolic=96, recorded_at=ago(minutes=20))
    assert [a["rule_id"] for a in late["alerts"]] == ["SPR-PRE-5"]
    assert mon.session()["predose_decision_pending"] is False
    assert mon.dose(**IM_KETAMINE).status_code == 201


def test_SPR_PRE_4_a_site_may_require_a_pre_dose_bp_for_ketamine(
    deliver_into: Callable[..., Monitoring], outbox: Outbox
) -> None:
    mon = deliver_into(
        {"network": {"predose_bp_required_agents": ["ketamine", "esketamine"]}}, Route.IM
    )
    assert_error(mon.dose(**IM_KETAMINE), 409, "SPR-PRE-4")
    mon.ok_vitals(bp_systolic=122, bp_diastolic=80, recorded_at=ago(minutes=2))
    assert mon.dose(**IM_KETAMINE).status_code == 201


def test_SPR_PRE_4_esketamine_needs_a_pre_dose_bp_by_default(
    mon: Monitoring, open_session: Callable[..., str], counts: Counts, outbox: Outbox
) -> None:
    open_session(route=Route.INTRANASAL_ESKETAMINE)
    before = counts()
    error = assert_error(mon.dose(**ESKETAMINE, device_number=1, **FIRST_DEVICE), 409, "SPR-PRE-4")
    assert "blood pressure" in error["details"]["blockers"][0]["clear"]
    assert counts() == before
    assert outbox("DoseAdministered") == []
    assert mon.first_device().status_code == 201


# -- SPR-MON-1 ------------------------------------------------------------------------------


def jobs(db: Path) -> dict[str, tuple[str, str]]:
    return {
        kind: (status, str(due))
        for kind, status, due in rows(db, "SELECT kind, status, due_at FROM scheduled_jobs")
    }


def fire(client: TestClient, at: datetime) -> int:
    return timer_firing(client, timer_handlers(SiteRules(MonitoringRules())))(at)


def first_im_dose(
    mon: Monitoring, open_session: Callable[..., str], minutes_ago: float
) -> datetime:
    """ses-1 open, its first dose (IM ketamine) charted as given `minutes_ago` minutes ago;
    when it was given."""
    open_session()
    given = now() - timedelta(minutes=minutes_ago)
    mon.dose(**IM_KETAMINE, administered_at=given.isoformat())
    return given


def test_SPR_MON_1_the_first_dose_sets_a_reminder_at_35_and_an_overdue_at_50_minutes(
    client: TestClient, mon: Monitoring, open_session: Callable[..., str], db: Path, outbox: Outbox
) -> None:
    given = first_im_dose(mon, open_session, minutes_ago=1)
    status = jobs(db)
    assert set(status) == {"bp_check_40min_reminder", "bp_check_40min_overdue"}
    assert all(s == "pending" for s, _ in status.values())

    assert fire(client, given + timedelta(minutes=34, seconds=59)) == 0
    assert fire(client, given + timedelta(minutes=35)) == 1
    [reminder] = outbox("ObservationDue")
    assert reminder["data"]["kind"] == "bp_check_40min"
    assert reminder["data"]["rule_id"] == "SPR-MON-1"
    assert parse(reminder["data"]["due_at"]) == given + timedelta(minutes=40)
    assert fire(client, given + timedelta(minutes=50)) == 1
    overdue = outbox("ObservationDue")[-1]
    assert overdue["data"]["kind"] == "bp_check_40min_overdue"
    assert overdue["data"]["rule_id"] == "SPR-MON-1"
    assert parse(overdue["data"]["due_at"]) == given + timedelta(minutes=40)
    assert fire(client, given + timedelta(hours=3)) == 0  # each fires once


def test_SPR_MON_1_a_bp_in_the_window_cancels_both_timers(
    client: TestClient, mon: Monitoring, open_session: Callable[..., str], db: Path, outbox: Outbox
) -> None:
    # 33 minutes ago: the readings below (32 minutes after the dose) are in the 30-50
    # minute window, and the reminder (35 minutes) is not due yet, so the app's own
    # timer worker cannot fire it first, however slow the machine is.
    given = first_im_dose(mon, open_session, minutes_ago=33)
    assert {s for s, _ in jobs(db).values()} == {"pending"}
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
    mon.dose(**IM_KETAMINE, administered_at=given.isoformat())
    mon.ok_vitals(bp_systolic=130, bp_diastolic=82)  # 29 min after: before the window
    assert mon.session()["bp_check_done"] is False
    assert {s for s, _ in jobs(db).values()} == {"pending"}


def test_SPR_MON_1_a_dose_charted_late_only_sets_the_overdue_notice(
    client: TestClient, mon: Monitoring, open_session: Callable[..., str], db: Path, outbox: Outbox
) -> None:
    open_session()
    mon.dose(**IM_KETAMINE, administered_at=ago(minutes=119))
    assert set(jobs(db)) == {"bp_check_40min_overdue"}
    # The notice is due at once, so the app's own timer worker may fire it before this
    # test does; either way it fires exactly once.
    fire(client, now())
    assert [status for status, _ in jobs(db).values()] == ["fired"]
    assert [e["data"]["kind"] for e in outbox("ObservationDue")] == ["bp_check_40min_overdue"]
    assert fire(client, now()) == 0


def test_SPR_MON_1_an_earlier_dose_moves_the_timers(
    mon: Monitoring, open_session: Callable[..., str], db: Path
) -> None:
    open_session()
    mon.dose(**IM_KETAMINE, administered_at=ago(minutes=5))
    first = jobs(db)["bp_check_40min_overdue"][1]
    mon.dose(**IM_KETAMINE, administered_at=ago(minutes=10))
    assert jobs(db)["bp_check_40min_overdue"][1] < first
    assert len(rows(db, "SELECT * FROM scheduled_jobs")) == 2


def test_SPR_MON_1_a_bp_charted_before_the_dose_is_recorded_satisfies_it_at_once(
    mon: Monitoring, open_session: Callable[..., str], db: Path
) -> None:
    open_session()
    mon.ok_vitals(bp_systolic=128, bp_diastolic=80, recorded_at=ago(minutes=80))
    mon.dose(**IM_KETAMINE, administered_at=ago(minutes=120))
    assert mon.session()["bp_check_done"] is True
    assert jobs(db) == {}


# -- issue 8: the gates over HTTP (nothing stored, nothing published on refusal) -------------


def test_MON_DOSE_2_a_dose_backdated_before_check_in_is_refused(
    mon: Monitoring, open_session: Callable[..., str], counts: Counts, outbox: Outbox
) -> None:
    open_session()  # checked in 3 hours ago
    before = counts()
    error = assert_error(
        mon.dose(**IM_KETAMINE, administered_at=ago(hours=3, minutes=6)), 409, "MON-DOSE-2"
    )
    assert "earliest_allowed" in error["details"]["blockers"][0]
    future = assert_error(
        mon.dose(**IM_KETAMINE, administered_at=ago(minutes=-10)), 409, "MON-DOSE-2"
    )
    assert "future" in future["message"]
    assert counts() == before
    assert outbox("DoseAdministered") == []
    assert mon.dose(**IM_KETAMINE, administered_at=ago(hours=3, minutes=4)).status_code == 201


def test_MON_DOSE_3_the_dose_follows_the_plan_not_what_was_typed(
    mon: Monitoring, open_session: Callable[..., str], counts: Counts
) -> None:
    open_session(route=Route.IV)
    before = counts()
    error = assert_error(mon.dose(**IM_KETAMINE), 409, "MON-DOSE-3")
    assert error["details"]["blockers"][0]["plan_route"] == "iv"
    assert counts() == before


def test_KET_DIS_6_an_iv_dose_needs_the_end_of_the_infusion(
    mon: Monitoring, open_session: Callable[..., str], counts: Counts
) -> None:
    open_session(route=Route.IV)
    before = counts()
    assert_error(mon.dose(**IV_KETAMINE, administered_at=ago(minutes=45)), 409, "KET-DIS-6")
    assert counts() == before
    dose = mon.dose(**IV_KETAMINE, administered_at=ago(minutes=45), dosing_ended_at=ago(minutes=5))
    assert dose.status_code == 201, dose.text
    assert dose.json()["dosing_ended_source"] == "charted"


def test_an_open_critical_alert_holds_doses_until_a_prescriber_resolves_it(
    mon: Monitoring, open_session: Callable[..., str], counts: Counts, outbox: Outbox
) -> None:
    open_session(route=Route.INTRANASAL_ESKETAMINE)
    assert mon.first_device(at=ago(minutes=10)).status_code == 201
    [alert] = mon.ok_vitals(spo2=85)["alerts"]
    before = counts()
    error = assert_error(mon.dose(**ESKETAMINE, device_number=2), 409, "KET-MON-SPO2")
    assert alert["alert_id"] in error["details"]["blockers"][0]["clear"]
    assert counts() == before
    resolved = mon.client.post(
        f"/sessions/ses-1/alerts/{alert['alert_id']}/resolve",
        json={"reason": "treated"},
        headers=mon.prescriber,
    )
    assert resolved.status_code == 200, resolved.text
    assert mon.dose(**ESKETAMINE, device_number=2).status_code == 201


def test_MBC_1_an_in_session_item_9_holds_doses_until_a_prescriber_decides(
    mon: Monitoring, open_session: Callable[..., str], counts: Counts, outbox: Outbox
) -> None:
    open_session()
    items = [2, 2, 2, 2, 2, 2, 2, 2, 1]
    measure = mon.client.post(
        "/patients/pt-1/measures",
        json={"instrument": "PHQ-9", "items": items, "session_id": "ses-1"},
        headers=mon.headers,
    )
    assert measure.status_code == 201, measure.text
    [concern] = mon.session()["open_safety_concerns"]
    assert concern["rule_id"] == "MBC-1"
    before = counts()
    error = assert_error(mon.dose(**IM_KETAMINE), 409, "MBC-1")
    assert concern["concern_id"] in error["details"]["blockers"][0]["clear"]
    assert counts() == before
    # A nurse cannot lift it; a prescriber does, with a coded decision.
    path = f"/sessions/ses-1/safety-concerns/{concern['concern_id']}/resolve"
    body = {"decision": "risk_assessed_continue", "note": "talked it through"}
    assert mon.client.post(path, json=body, headers=mon.headers).status_code == 403
    assert (
        mon.client.post(path, json={"decision": "maybe"}, headers=mon.prescriber).status_code == 422
    )
    resolved = mon.client.post(path, json=body, headers=mon.prescriber)
    assert resolved.status_code == 200, resolved.text
    assert resolved.json()["resolution"] == "risk_assessed_continue"
    assert "note" not in resolved.json()
    assert_error(mon.client.post(path, json=body, headers=mon.prescriber), 409, "MON-ALERT-1")
    assert mon.dose(**IM_KETAMINE).status_code == 201


def test_SPR_ADM_1_and_2_one_device_at_a_time_5_minutes_apart(
    mon: Monitoring, open_session: Callable[..., str], counts: Counts
) -> None:
    open_session(route=Route.INTRANASAL_ESKETAMINE)
    first = now() - timedelta(minutes=10)
    assert mon.first_device(at=first.isoformat()).status_code == 201
    before = counts()
    assert_error(mon.dose(**{**ESKETAMINE, "dose_mg": 56}, device_number=2), 409, "SPR-ADM-1")
    too_soon = (first + timedelta(minutes=4, seconds=59)).isoformat()
    error = assert_error(
        mon.dose(**ESKETAMINE, device_number=2, administered_at=too_soon), 409, "SPR-ADM-2"
    )
    assert "next_allowed_at" in error["details"]["blockers"][0]
    assert counts() == before
    on_time = (first + timedelta(minutes=5)).isoformat()
    assert mon.dose(**ESKETAMINE, device_number=2, administered_at=on_time).status_code == 201


def test_SPR_ADM_3_84_mg_only_after_an_earlier_session_at_56(
    mon: Monitoring, open_session: Callable[..., str], counts: Counts
) -> None:
    open_session("ses-1", route=Route.INTRANASAL_ESKETAMINE)
    assert mon.first_device("ses-1", at=ago(minutes=30)).status_code == 201
    assert (
        mon.dose(
            "ses-1", **ESKETAMINE, device_number=2, administered_at=ago(minutes=20)
        ).status_code
        == 201
    )
    before = counts()
    assert_error(mon.dose("ses-1", **ESKETAMINE, device_number=3), 409, "SPR-ADM-3")
    assert counts() == before
    # A later session of the same patient may go to 84 mg.
    open_session("ses-2", route=Route.INTRANASAL_ESKETAMINE)
    assert mon.first_device("ses-2", at=ago(minutes=12)).status_code == 201
    assert (
        mon.dose("ses-2", **ESKETAMINE, device_number=2, administered_at=ago(minutes=6)).status_code
        == 201
    )
    assert mon.dose("ses-2", **ESKETAMINE, device_number=3).status_code == 201


def test_SPR_PRE_3_and_SPR_PRE_7_are_answered_with_the_first_device(
    mon: Monitoring, open_session: Callable[..., str], counts: Counts
) -> None:
    open_session(route=Route.INTRANASAL_ESKETAMINE)
    mon.ok_vitals(bp_systolic=120, bp_diastolic=80, recorded_at=ago(minutes=2))
    before = counts()
    error = assert_error(mon.dose(**ESKETAMINE, device_number=1), 409, "SPR-PRE-3")
    assert [b["rule_id"] for b in error["details"]["blockers"]] == ["SPR-PRE-3", "SPR-PRE-7"]
    spray: dict[str, Any] = {"nasal_medication_used": True, "nasal_medication_at": ago(minutes=59)}
    assert_error(
        mon.dose(**ESKETAMINE, device_number=1, concomitant_medications=[], **spray),
        409,
        "SPR-PRE-3",
    )
    assert counts() == before
    spray["nasal_medication_at"] = ago(minutes=61)
    ok = mon.dose(**ESKETAMINE, device_number=1, concomitant_medications=["opioid"], **spray)
    assert ok.status_code == 201, ok.text
    assert ok.json()["concomitant_medications"] == ["opioid"]
