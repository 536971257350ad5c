"""GET /sites/{site_id}/sessions: the treatment floor's board in one call. Each
session is shown exactly as GET /sessions/{id} shows it (state, doses, latest values,
open alerts, every discharge blocker with what clears it); only the caller's site;
only sessions starting in [from, to)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

from fastapi.testclient import TestClient

from kap_shared.testing import token

from .clock import ago, now
from .conftest import IM_KETAMINE, OTHER_SITE, SITE, Headers, Monitoring


def board(client: TestClient, headers: Headers, site: str = SITE, **params: Any) -> Any:
    query = {"from": (now() - timedelta(hours=12)).isoformat(), **params}
    return client.get(f"/sites/{site}/sessions", params=query, headers=headers)


def test_site_day_shows_every_window_of_the_site_as_the_session_view_does(
    mon: Monitoring, open_session: Callable[..., str], therapist: Headers
) -> None:
    open_session("ses-ready", patient_id="pt-1")
    mon.dose("ses-ready", **IM_KETAMINE, administered_at=ago(minutes=90))
    mon.ready("ses-ready")
    open_session("ses-dosed", patient_id="pt-2")
    mon.dose("ses-dosed", **IM_KETAMINE, administered_at=ago(minutes=90))
    mon.ok_vitals("ses-dosed", bp_systolic=205, bp_diastolic=118)  # a critical alert
    open_session("ses-booked", patient_id="pt-3", check_in=False)
    open_session("ses-elsewhere", patient_id="pt-4", site_id=OTHER_SITE)

    response = board(mon.client, mon.headers)

    assert response.status_code == 200, response.text
    found = {s["session_id"]: s for s in response.json()}
    assert set(found) == {"ses-ready", "ses-dosed", "ses-booked"}
    for session_id, shown in found.items():
        assert shown == mon.session(session_id)
    assert found["ses-ready"]["discharge"] == {"allowed": True, "blockers": []}
    dosed = found["ses-dosed"]
    assert [a["severity"] for a in dosed["open_alerts"]] == ["critical"]
    assert dosed["latest"]["bp_systolic"]["value"] == 205
    blockers = {b["rule_id"]: b["cleared_by"] for b in dosed["discharge"]["blockers"]}
    assert blockers["MON-DIS-2"] == "alert_decision"
    assert blockers["MON-DIS-3"] == "signature"
    assert found["ses-booked"]["status"] == "scheduled"
    # Every clinical reader may see the board (a therapist too).
    assert board(mon.client, therapist).status_code == 200


def test_site_day_only_sessions_starting_in_the_window(
    mon: Monitoring, open_session: Callable[..., str]
) -> None:
    open_session("ses-1")  # starts three hours ago
    later = {"from": now().isoformat()}
    assert board(mon.client, mon.headers, **later).json() == []
    bounded = {"to": (now() - timedelta(hours=4)).isoformat()}
    assert board(mon.client, mon.headers, **bounded).json() == []
    assert [s["session_id"] for s in board(mon.client, mon.headers).json()] == ["ses-1"]


def test_site_day_refuses_another_site_a_device_and_bad_input(
    mon: Monitoring, open_session: Callable[..., str]
) -> None:
    open_session("ses-1")
    other = token("rn-zed", "nurse", [OTHER_SITE])
    response = board(mon.client, other)
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "forbidden"
    assert board(mon.client, token("gw-1", "device", [SITE])).status_code == 403
    missing = mon.client.get(f"/sites/{SITE}/sessions", headers=mon.headers)
    assert missing.status_code == 422
    assert "from" in missing.text
    naive = board(mon.client, mon.headers, **{"from": "2026-12-01T00:00:00"})
    assert naive.status_code == 422
