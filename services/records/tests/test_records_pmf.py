"""SPR-PMF-1: the REMS Patient Monitoring Form of each esketamine dosing session,
assembled from events; missing fields by name; completion with coded values;
submission (409 SPR-PMF-1 while incomplete, nothing stored or published); the
worklist; the printable rendering; reminders and the overdue notice from durable
timers, cancelled by the submission."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient

from kap_shared.events import decode
from kap_shared.events.topics import RECORDS_EVENTS
from kap_shared.testing import rows, token

Story = Any  # conftest.Story
Outbox = Callable[[], list[dict[str, Any]]]
COORDINATOR = token("co-amy", "coordinator", ["site-a"])
THERAPIST = token("th-ben", "therapist", ["site-a"])
OTHER_SITE = token("co-zed", "coordinator", ["site-b"])
# A month ahead: no timer set by the tests is ever due for the service's own worker.
T0 = datetime.combine(date.today() + timedelta(days=30), time(14, 0), UTC)
COMPLETION = {
    "patient_rems_id": "PT-448812",
    "setting_rems_id": "HCS-20931",
    "vitals_acceptable_pre_dose": True,
    "vitals_acceptable_pre_completion": True,
    "ready_to_leave_minutes": 100,
}


def _forms(client: TestClient, query: str = "") -> list[dict[str, Any]]:
    response = client.get(f"/pmf{query}", headers=COORDINATOR)
    assert response.status_code == 200, response.text
    forms: list[dict[str, Any]] = response.json()["forms"]
    return forms


def _pmf_events(outbox: Outbox, event_type: str | None = None) -> list[dict[str, Any]]:
    events = [e for e in outbox() if e["event_type"].startswith("Pmf")]
    for event in events:
        decode(RECORDS_EVENTS, event)
    return [e for e in events if event_type in (None, e["event_type"])]


def test_SPR_PMF_1_form_assembled_from_the_session_events(
    client: TestClient, story: Story, outbox: Outbox
) -> None:
    story.intake_and_plan(T0)
    story.dosing_session("s-1", T0, critical_alert=True)
    [form] = _forms(client)
    assert form["status"] == "incomplete"
    # only what no event carries is missing
    assert form["missing_fields"] == list(COMPLETION)
    f = form["fields"]
    assert (f["prescriber_id"], f["monitoring_hcp_id"]) == ("rx-ada", "rn-dee")
    assert f["session_date"] == T0.date().isoformat()
    assert [(d["device_number"], d["dose_mg"], d["lot_number"]) for d in f["doses"]] == [
        (1, 28, "LOT-A1"),
        (2, 28, "LOT-A1"),
    ]
    assert f["total_dose_mg"] == 56
    assert f["concomitant_medications"]["benzodiazepine"] is True
    assert f["concomitant_medications"]["maoi"] is False
    assert (f["bp_pre_dose"]["systolic"], f["bp_pre_dose"]["diastolic"]) == (128, 80)
    assert (f["bp_40_min"]["systolic"], f["bp_40_min"]["diastolic"]) == (186, 112)
    assert (f["bp_pre_discharge"]["systolic"], f["bp_pre_discharge"]["diastolic"]) == (132, 84)
    assert [c["spo2"] for c in f["spo2_checks"]] == [98, 96, 97, 99]
    assert f["sedation"] == {"observed": True, "resolved": True, "assessments": 4}
    assert f["dissociation"] == {"observed": True, "resolved": True, "assessments": 2}
    assert f["monitoring_minutes"] == 125
    [event] = f["adverse_events"]
    assert (event["rule_id"], event["metric"], event["resolved"]) == (
        "SPR-MON-6",
        "bp_systolic",
        True,
    )
    assert f["discharge"]["signed_by"] == "rn-dee"
    due_by = datetime.fromisoformat(form["due_by"])
    assert due_by == T0 + timedelta(days=7)
    [opened] = _pmf_events(outbox, "PmfOpened")
    assert opened["data"]["pmf_id"] == form["pmf_id"]
    assert opened["data"]["session_id"] == "s-1"


def test_SPR_PMF_1_missing_40_minute_bp_is_listed_by_name(client: TestClient, story: Story) -> None:
    story.intake_and_plan(T0)
    story.dosing_session("s-1", T0, with_40_min_bp=False, lot_number=None, signed_by=None)
    [form] = _forms(client)
    assert "bp_40_min" in form["missing_fields"]
    assert "dose_lot_numbers" in form["missing_fields"]
    assert "discharge" in form["missing_fields"]
    assert "bp_pre_dose" not in form["missing_fields"]


def test_SPR_PMF_1_complete_then_submit_cancels_the_timers(
    client: TestClient,
    story: Story,
    outbox: Outbox,
    db: Path,
    fire_timers: Callable[[datetime], int],
) -> None:
    story.intake_and_plan(T0)
    story.dosing_session("s-1", T0)
    [form] = _forms(client)
    pmf_id = form["pmf_id"]
    response = client.post(f"/pmf/{pmf_id}/submit", json={}, headers=COORDINATOR)
    assert response.status_code == 409
    error = response.json()["error"]
    assert error["code"] == "SPR-PMF-1"
    assert error["details"]["missing_fields"] == list(COMPLETION)
    assert _pmf_events(outbox, "PmfSubmitted") == []  # nothing published on refusal

    assert fire_timers(T0 + timedelta(days=3, seconds=1)) == 1
    [reminder] = _pmf_events(outbox, "PmfReminder")
    assert reminder["data"]["days_left"] == 4
    assert reminder["data"]["missing_fields"] == list(COMPLETION)

    response = client.patch(f"/pmf/{pmf_id}", json=COMPLETION, headers=COORDINATOR)
    assert response.status_code == 200, response.text
    assert response.json()["status"] == "ready"
    assert response.json()["missing_fields"] == []
    response = client.post(
        f"/pmf/{pmf_id}/submit", json={"confirmation": "REMS-77120"}, headers=COORDINATOR
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["status"] == "submitted"
    assert body["submission"]["submitted_by"] == "co-amy"
    [submitted] = _pmf_events(outbox, "PmfSubmitted")
    assert submitted["data"]["confirmation"] == "REMS-77120"
    pending = rows(db, "SELECT COUNT(*) FROM scheduled_jobs WHERE status = 'pending'")
    assert pending == [(0,)]
    assert fire_timers(T0 + timedelta(days=30)) == 0
    assert _pmf_events(outbox, "PmfOverdue") == []
    # a submitted form is final
    response = client.patch(
        f"/pmf/{pmf_id}", json={"ready_to_leave_minutes": 90}, headers=COORDINATOR
    )
    assert (response.status_code, response.json()["error"]["code"]) == (409, "PMF-STATE-1")
    assert _forms(client, "?status=submitted")[0]["pmf_id"] == pmf_id


def test_SPR_PMF_1_reminders_days_3_5_6_then_overdue(
    client: TestClient, story: Story, outbox: Outbox, fire_timers: Callable[[datetime], int]
) -> None:
    story.intake_and_plan(T0)
    story.dosing_session("s-1", T0)
    assert fire_timers(T0 + timedelta(days=2, hours=23)) == 0
    assert fire_timers(T0 + timedelta(days=6, hours=1)) == 3
    assert [e["data"]["days_left"] for e in _pmf_events(outbox, "PmfReminder")] == [4, 2, 1]
    assert fire_timers(T0 + timedelta(days=7)) == 1
    [overdue] = _pmf_events(outbox, "PmfOverdue")
    assert overdue["data"]["missing_fields"] == list(COMPLETION)
    assert overdue["patient_id"] == "pt-1"
    assert fire_timers(T0 + timedelta(days=8)) == 0  # exactly once


def test_patch_takes_coded_values_only(client: TestClient, story: Story) -> None:
    story.intake_and_plan(T0)
    story.dosing_session("s-1", T0)
    [form] = _forms(client)
    url = f"/pmf/{form['pmf_id']}"
    for body, field in (
        ({"patient_rems_id": "Ada Lovelace"}, "patient_rems_id"),
        ({"notes": "free text"}, "notes"),
        ({"ready_to_leave_minutes": -3}, "ready_to_leave_minutes"),
        ({"vitals_acceptable_pre_dose": None}, "vitals_acceptable_pre_dose"),
    ):
        response = client.patch(url, json=body, headers=COORDINATOR)
        assert response.status_code == 422, body
        assert response.json()["error"]["details"][0]["field"] == field
    assert client.get(url, headers=COORDINATOR).json()["missing_fields"] == list(COMPLETION)


def test_rems_ids_carry_over_to_the_next_session(client: TestClient, story: Story) -> None:
    story.intake_and_plan(T0)
    story.dosing_session("s-1", T0)
    [first] = _forms(client)
    client.patch(f"/pmf/{first['pmf_id']}", json=COMPLETION, headers=COORDINATOR)
    story.dosing_session("s-2", T0 + timedelta(days=3), sequence=2, with_40_min_bp=False)
    second = next(f for f in _forms(client) if f["session_id"] == "s-2")
    assert second["fields"]["patient_rems_id"] == "PT-448812"
    assert second["missing_fields"] == [
        "bp_40_min",
        "vitals_acceptable_pre_dose",
        "vitals_acceptable_pre_completion",
        "ready_to_leave_minutes",
    ]


def test_worklist_filters_and_sites(client: TestClient, story: Story) -> None:
    story.intake_and_plan(T0)
    story.dosing_session("s-1", T0)
    story.dosing_session("s-2", T0 + timedelta(days=3), sequence=2)
    assert [f["session_id"] for f in _forms(client, "?site_id=site-a")] == ["s-1", "s-2"]
    due = (T0 + timedelta(days=8)).isoformat().replace("+00:00", "Z")
    assert [f["session_id"] for f in _forms(client, f"?due_before={due}")] == ["s-1"]
    assert _forms(client, "?status=ready") == []
    assert len(_forms(client, "?status=incomplete")) == 2
    assert client.get("/pmf?site_id=site-a", headers=OTHER_SITE).status_code == 403
    assert client.get("/pmf", headers=OTHER_SITE).json() == {"forms": []}
    assert client.get("/pmf", headers=THERAPIST).status_code == 403
    pmf_id = _forms(client)[0]["pmf_id"]
    assert client.get(f"/pmf/{pmf_id}", headers=OTHER_SITE).status_code == 403
    assert client.get("/pmf/nope", headers=COORDINATOR).status_code == 404


def test_printable_form_has_the_sections(client: TestClient, story: Story) -> None:
    story.intake_and_plan(T0)
    story.dosing_session("s-1", T0, with_40_min_bp=False)
    [form] = _forms(client)
    for response in (
        client.get(f"/pmf/{form['pmf_id']}", headers={**COORDINATOR, "accept": "text/html"}),
        client.get(f"/pmf/{form['pmf_id']}/print", headers=COORDINATOR),
    ):
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/html")
        html = response.text
        for section in ("Concomitant medications", "BP ~40 min after administration", "LOT-A1"):
            assert section in html
        assert "bp_40_min" in html  # listed as missing
    assert client.get(f"/pmf/{form['pmf_id']}", headers=COORDINATOR).json()["pmf_id"]


def test_no_form_for_ketamine_sessions(client: TestClient, story: Story, deliver: Any) -> None:
    from kap_shared.events import DoseAdministered
    from kap_shared.events.enums import Agent, Route
    from kap_shared.events.monitoring import DoseAdministeredData

    dose = DoseAdministered(
        producer="monitoring",
        site_id="site-a",
        patient_id="pt-2",
        correlation_id="episode-pt-2",
        data=DoseAdministeredData(
            session_id="s-iv",
            administered_at=T0,
            route=Route.IV,
            agent=Agent.KETAMINE,
            dose_mg=35,
        ),
    )
    assert deliver(dose)
    assert _forms(client) == []
