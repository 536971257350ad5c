"""GET /alerts: a site's escalating alerts with their escalation state and in-app
notification ids (the care-team console acknowledges from the floor through one)."""

from __future__ import annotations

from kap_shared.testing import token

from . import factories as f
from .conftest import Harness

NURSE = token("rn-dee", "nurse", ["site-a"])


def test_open_alert_lists_its_notifications_then_shows_acknowledged(h: Harness) -> None:
    h.deliver(f.plan_created())
    h.deliver(f.session_scheduled())
    event = f.vitals_alert()
    h.deliver(event)

    response = h.client.get(
        "/alerts", params={"site_id": "site-a", "status": "open"}, headers=NURSE
    )

    assert response.status_code == 200, response.text
    [alert] = response.json()
    assert alert["alert_id"] == str(event.event_id)
    assert (alert["status"], alert["level"], alert["priority"]) == ("open", 0, "stat")
    in_app = h.notifications(f"alert_id = '{alert['alert_id']}' AND channel = 'in_app'")
    assert sorted(alert["notification_ids"]) == sorted(n["notification_id"] for n in in_app)

    ack = h.client.post(f"/notifications/{alert['notification_ids'][0]}/ack", headers=NURSE)
    assert ack.status_code == 200, ack.text
    after = h.client.get("/alerts", params={"site_id": "site-a"}, headers=NURSE).json()
    assert [(a["status"], a["acknowledged_by"]) for a in after] == [("acknowledged", "rn-dee")]
    assert (
        h.client.get(
            "/alerts", params={"site_id": "site-a", "status": "open"}, headers=NURSE
        ).json()
        == []
    )


def test_another_sites_alerts_are_403(h: Harness) -> None:
    response = h.client.get(
        "/alerts", params={"site_id": "site-a"}, headers=token("rx-bo", "prescriber", ["site-b"])
    )
    assert response.status_code == 403
