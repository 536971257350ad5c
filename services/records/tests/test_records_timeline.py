"""The timeline: every event about the patient, ordered, grouped by phase, vitals
summarised per session, summaries without free text, the alert chain linked, the
filters and paging, and the same role/site rules as the other services."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from fastapi.testclient import TestClient

from kap_shared.events import VitalsRecorded
from kap_shared.testing import token

Story = Any  # conftest.Story
COORDINATOR = token("co-amy", "coordinator", ["site-a"])
THERAPIST = token("th-ben", "therapist", ["site-a"])
OTHER_SITE = token("co-zed", "coordinator", ["site-b"])
DEVICE = token("dev-1", "device", ["site-a"])
# A month ahead: no timer set by the tests is ever due for the service's own worker.
T0 = datetime.combine(date.today() + timedelta(days=30), time(14, 0), UTC)


def _timeline(client: TestClient, query: str = "", headers: Any = COORDINATOR) -> Any:
    response = client.get(f"/patients/pt-1/timeline{query}", headers=headers)
    assert response.status_code == 200, response.text
    return response.json()


def test_timeline_is_ordered_grouped_by_phase_with_vitals_summarised(
    client: TestClient, story: Story
) -> None:
    story.intake_and_plan(T0)
    story.dosing_session("s-1", T0, critical_alert=True)
    body = _timeline(client, headers=THERAPIST)
    entries = body["entries"]
    keys = [(e["occurred_at"], e["entry_id"]) for e in entries]
    assert keys == sorted(keys)
    types = [e["event_type"] for e in entries]
    assert types.count("VitalsRecorded") == 0
    assert types.count("VitalsSummary") == 1
    # every non-vitals event delivered is there, once
    delivered = {str(e.event_id) for e in story.delivered if e.event_type != "VitalsRecorded"}
    assert {e["entry_id"] for e in entries if e["event_type"] != "VitalsSummary"} == delivered
    vitals = next(e for e in entries if e["event_type"] == "VitalsSummary")
    assert vitals["data"]["count"] == 4
    assert vitals["data"]["ranges"]["bp_systolic"] == {"min": 128, "max": 186}
    assert vitals["data"]["ranges"]["spo2"] == {"min": 96, "max": 99}
    assert vitals["summary"].startswith("4 vitals readings, BP 128-186/80-112")
    assert vitals["phase"] == "dosing"
    # before the dosing session: preparation; the session's events: dosing
    assert entries[0]["event_type"] == "PatientReferred"
    assert entries[0]["phase"] == "preparation"
    assert [g["phase"] for g in body["phases"]] == ["preparation", "dosing"]
    assert body["total"] == len(entries)


def test_a_reading_sent_again_under_a_new_event_id_is_counted_once(
    client: TestClient, story: Story, deliver: Any
) -> None:
    """Monitoring counts a reading once per reading_id (MON-READING-1); so does the record:
    a gateway's re-send, or its reading_id reused in another session, adds nothing."""
    story.intake_and_plan(T0)
    story.dosing_session("s-1", T0)
    first = next(e for e in story.delivered if isinstance(e, VitalsRecorded))
    resent = VitalsRecorded(**first.model_dump(exclude={"event_id"}))
    reused = VitalsRecorded(
        **first.model_dump(exclude={"event_id", "data"}),
        data=first.data.model_copy(update={"session_id": "s-2"}),
    )
    assert resent.event_id != first.event_id

    assert deliver(resent) is False
    assert deliver(reused) is False
    entries = {e["entry_id"]: e for e in _timeline(client)["entries"]}
    vitals = entries["vitals:s-1"]
    assert vitals["data"]["count"] == 4
    assert str(first.event_id) in vitals["links"]["event_ids"]
    assert str(resent.event_id) not in vitals["links"]["event_ids"]
    assert "vitals:s-2" not in entries


def test_the_alert_chain_links_reading_alert_notification_ack(
    client: TestClient, story: Story
) -> None:
    story.intake_and_plan(T0)
    chain = story.dosing_session("s-1", T0, critical_alert=True)
    entries = {e["entry_id"]: e for e in _timeline(client)["entries"]}
    alert = entries[str(chain["alert"].event_id)]
    vitals = entries["vitals:s-1"]
    assert alert["links"]["causation_id"] in vitals["links"]["event_ids"]
    sent = entries[str(chain["sent"].event_id)]
    ack = entries[str(chain["ack"].event_id)]
    assert sent["links"]["causation_id"] == alert["links"]["event_id"]
    assert ack["links"]["causation_id"] == alert["links"]["event_id"]
    assert alert["rule_ids"] == ["SPR-MON-6"]
    assert alert["summary"] == "critical alert SPR-MON-6: bp_systolic 186 (threshold 180)"
    # no free text: the alert's message is neither summarised nor stored
    assert "message" not in alert["data"]
    assert "Zelphine" not in str(entries)
    assert {e["links"]["correlation_id"] for e in entries.values()} == {"episode-pt-1"}


def test_filters_phase_types_time_range_and_paging(client: TestClient, story: Story) -> None:
    story.intake_and_plan(T0)
    story.dosing_session("s-1", T0)
    everything = _timeline(client)["entries"]
    dosing = _timeline(client, "?phase=dosing")["entries"]
    assert dosing
    assert all(e["phase"] == "dosing" for e in dosing)
    assert len(dosing) == len([e for e in everything if e["phase"] == "dosing"])
    doses = _timeline(client, "?types=DoseAdministered,DischargeCleared")["entries"]
    assert [e["event_type"] for e in doses] == [
        "DoseAdministered",
        "DoseAdministered",
        "DischargeCleared",
    ]
    assert doses[0]["summary"] == "esketamine 28 mg intranasal_esketamine device 1, lot LOT-A1"
    since = (T0 - timedelta(minutes=1)).isoformat().replace("+00:00", "Z")
    until = (T0 + timedelta(minutes=30)).isoformat().replace("+00:00", "Z")
    window = _timeline(client, f"?since={since}&until={until}")["entries"]
    assert [e["event_type"] for e in window] == ["DoseAdministered", "DoseAdministered"]
    first = _timeline(client, "?limit=3")
    second = _timeline(client, f"?limit=3&offset={first['next_offset']}")
    assert [e["entry_id"] for e in first["entries"] + second["entries"]] == [
        e["entry_id"] for e in everything[:6]
    ]


def test_redelivered_events_change_nothing(client: TestClient, story: Story, deliver: Any) -> None:
    story.intake_and_plan(T0)
    story.dosing_session("s-1", T0)
    before = _timeline(client)
    assert not any(deliver(event) for event in story.delivered)  # the inbox skips them
    assert _timeline(client) == before


def test_roles_and_sites(client: TestClient, story: Story) -> None:
    story.intake_and_plan(T0)
    assert client.get("/patients/pt-1/timeline").status_code == 401
    assert client.get("/patients/pt-1/timeline", headers=OTHER_SITE).status_code == 403
    assert client.get("/patients/pt-1/timeline", headers=DEVICE).status_code == 403
    assert client.get("/patients/pt-9/timeline", headers=COORDINATOR).status_code == 404
    response = client.get("/patients/pt-1/timeline?phase=later", headers=COORDINATOR)
    assert response.status_code == 422
    assert response.json()["error"]["details"][0]["field"] == "phase"
