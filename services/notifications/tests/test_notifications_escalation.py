"""Escalation of unacknowledged alerts through durable timers (driven by the
timer worker's injectable clock), and acknowledgement stopping it."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from kap_shared.testing import rows, token

from . import factories as f
from .conftest import Harness, ts

LEVELS = [
    {"after_seconds": 120, "recipient_ids": ["oncall-1"]},
    {"after_seconds": 300, "recipient_ids": ["director-1", "oncall-1"]},
]


def _raise_alert(h: Harness, levels: list[dict[str, Any]] | None = None) -> str:
    if levels is not None:
        assert h.put_levels("site-a", levels).status_code == 200
    h.put_recipient("oncall-1", role="prescriber", phone="+15550100300")
    h.deliver(f.plan_created())
    h.deliver(f.session_scheduled())
    event = f.vitals_alert()
    h.deliver(event)
    return str(event.event_id)


def _opened_at(h: Harness) -> Any:
    [(opened,)] = rows(h.db, "SELECT opened_at FROM alerts")
    return ts(opened)


def _escalations(h: Harness) -> list[dict[str, Any]]:
    return [e["data"] for e in h.outbox("AlertEscalated")]


def test_level_fires_at_after_seconds_not_a_moment_before(h: Harness) -> None:
    alert_id = _raise_alert(h, LEVELS)
    opened = _opened_at(h)

    h.clock.set(opened + timedelta(seconds=120) - timedelta(milliseconds=1))
    assert h.fire_timers() == 0
    assert _escalations(h) == []

    h.clock.set(opened + timedelta(seconds=120))
    assert h.fire_timers() == 1
    assert _escalations(h) == [
        {"source_event_id": alert_id, "level": 1, "to_recipient_ids": ["oncall-1"]}
    ]
    assert h.fire_timers() == 0  # fired once


def test_escalated_recipients_get_stat_sms_and_in_app_notifications(h: Harness) -> None:
    alert_id = _raise_alert(h, LEVELS)
    h.clock.set(_opened_at(h) + timedelta(seconds=120))
    h.fire_timers()

    [escalated] = h.outbox("AlertEscalated")
    assert escalated["causation_id"] == alert_id
    assert (escalated["site_id"], escalated["patient_id"]) == ("site-a", "pt-1")
    mine = h.notifications("recipient_id = 'oncall-1'")
    assert [(n["channel"], n["priority"], n["status"], n["escalation_level"]) for n in mine] == [
        ("in_app", "stat", "delivered", 1),
        ("sms", "stat", "pending", 1),
    ]
    # They answer the AlertEscalated event and belong to the alert.
    assert {n["source_event_id"] for n in mine} == {escalated["event_id"]}
    assert {n["source_event_type"] for n in mine} == {"AlertEscalated"}
    assert {n["alert_id"] for n in mine} == {alert_id}
    assert mine[0]["title"] == "ESCALATED (level 1): CRITICAL vitals alert"
    assert "Not acknowledged 120 s after the first notification." in mine[0]["body"]
    h.deliver_due()
    assert [r.payload["to"] for r in h.sms.requests] == ["+15550100300"]


def test_levels_fire_in_order_counting_from_the_first_notification(h: Harness) -> None:
    _raise_alert(h, LEVELS)
    opened = _opened_at(h)
    h.clock.set(opened + timedelta(seconds=120))
    h.fire_timers()

    h.clock.set(opened + timedelta(seconds=300) - timedelta(milliseconds=1))
    assert h.fire_timers() == 0
    h.clock.set(opened + timedelta(seconds=300))
    assert h.fire_timers() == 1

    assert [(e["level"], e["to_recipient_ids"]) for e in _escalations(h)] == [
        (1, ["oncall-1"]),
        (2, ["director-1", "oncall-1"]),
    ]
    # The on-call clinician is paged again at level 2 (a new notification per level).
    assert [n["escalation_level"] for n in h.notifications("recipient_id = 'oncall-1'")] == [
        1,
        1,
        2,
        2,
    ]
    assert rows(h.db, "SELECT level, status FROM alerts") == [(2, "open")]
    h.clock.advance(3600)
    assert h.fire_timers() == 0  # no level 3


def test_escalation_survives_a_restart_and_catches_up(h: Harness) -> None:
    _raise_alert(h, LEVELS)
    # The process was down for both due times; a fresh timer worker fires both, once each.
    h.clock.set(_opened_at(h) + timedelta(seconds=600))
    fired = sum(h.fire_timers() for _ in range(3))
    assert fired == 2
    assert [e["level"] for e in _escalations(h)] == [1, 2]


def test_acknowledgement_stops_the_escalation(h: Harness) -> None:
    alert_id = _raise_alert(h, LEVELS)
    [notification] = h.notifications(
        "recipient_id = 'rx-ada' AND channel = 'in_app' AND alert_id IS NOT NULL"
    )

    response = h.client.post(
        f"/notifications/{notification['notification_id']}/ack",
        headers=token("rx-ada", "prescriber", ["site-a"]),
    )

    assert response.status_code == 200, response.text
    h.clock.set(_opened_at(h) + timedelta(seconds=3600))
    assert h.fire_timers() == 0
    assert _escalations(h) == []
    assert rows(h.db, "SELECT status, acknowledged_by, level FROM alerts") == [
        ("acknowledged", "rx-ada", 0)
    ]
    assert rows(h.db, "SELECT status FROM scheduled_jobs WHERE kind = 'escalation'") == [
        ("cancelled",)
    ]
    [ack] = h.outbox("AlertAcknowledged")
    assert ack["data"]["source_event_id"] == alert_id


def test_acknowledging_an_escalated_notification_stops_the_remaining_levels(h: Harness) -> None:
    alert_id = _raise_alert(h, LEVELS)
    h.clock.set(_opened_at(h) + timedelta(seconds=120))
    h.fire_timers()
    [escalated] = h.notifications("recipient_id = 'oncall-1' AND channel = 'in_app'")

    response = h.client.post(
        f"/notifications/{escalated['notification_id']}/ack",
        headers=token("oncall-1", "prescriber", ["site-a"]),
    )

    assert response.status_code == 200
    h.clock.advance(3600)
    assert h.fire_timers() == 0
    assert [e["level"] for e in _escalations(h)] == [1]
    [ack] = h.outbox("AlertAcknowledged")
    # AlertAcknowledged names the alert's event, not the AlertEscalated one.
    assert ack["data"]["source_event_id"] == alert_id
    assert ack["data"]["notification_id"] == escalated["notification_id"]


def test_levels_are_a_snapshot_taken_when_the_alert_is_raised(h: Harness) -> None:
    _raise_alert(h, LEVELS)
    h.put_levels("site-a", [{"after_seconds": 5, "recipient_ids": ["someone-else"]}])
    h.clock.set(_opened_at(h) + timedelta(seconds=120))
    h.fire_timers()
    assert [e["to_recipient_ids"] for e in _escalations(h)] == [["oncall-1"]]


def test_site_without_levels_escalates_to_its_coordinators_after_the_fallback(
    h: Harness,
) -> None:
    h.put_recipient("co-1", role="coordinator", phone="+15550100400")
    h.put_recipient("co-b", role="coordinator", sites=["site-b"])
    alert_id = _raise_alert(h)
    opened = _opened_at(h)

    h.clock.set(opened + timedelta(seconds=299))
    assert h.fire_timers() == 0
    h.clock.set(opened + timedelta(seconds=300))  # stat_fallback_escalation_seconds
    assert h.fire_timers() == 1
    assert _escalations(h) == [
        {"source_event_id": alert_id, "level": 1, "to_recipient_ids": ["co-1"]}
    ]


def test_an_empty_level_list_falls_back_too_and_nobody_to_tell_emits_nothing(h: Harness) -> None:
    _raise_alert(h, [])
    h.clock.set(_opened_at(h) + timedelta(seconds=300))
    assert h.fire_timers() == 1  # the level is reached ...
    assert _escalations(h) == []  # ... but the site has no coordinator: no event, no rows
    assert rows(h.db, "SELECT level FROM alerts") == [(1,)]


class TestWithoutFallback:
    @pytest.fixture
    def settings_overrides(self, tmp_path: Any) -> dict[str, Any]:
        rules = tmp_path / "rules.json"
        rules.write_text('{"network": {"stat_fallback_escalation_seconds": null}}')
        return {"rules_file": rules}

    def test_no_levels_and_no_fallback_means_no_timer(self, h: Harness) -> None:
        _raise_alert(h)
        assert rows(h.db, "SELECT count(*) FROM scheduled_jobs WHERE kind = 'escalation'") == [(0,)]
        assert rows(h.db, "SELECT status, levels FROM alerts") == [("open", "[]")]


def test_integration_overdue_escalates_to_the_coordinators_after_a_day(h: Harness) -> None:
    h.put_recipient("co-1", role="coordinator", email="co@clinic.example")
    event = f.integration_overdue("th-due")
    h.deliver(event)
    opened = _opened_at(h)

    h.clock.set(opened + timedelta(hours=24) - timedelta(seconds=1))
    assert h.fire_timers() == 0
    h.clock.set(opened + timedelta(hours=24))
    assert h.fire_timers() == 1

    assert _escalations(h) == [
        {"source_event_id": str(event.event_id), "level": 1, "to_recipient_ids": ["co-1"]}
    ]
    mine = h.notifications("recipient_id = 'co-1'")
    assert [(n["channel"], n["priority"]) for n in mine] == [
        ("email", "routine"),
        ("in_app", "routine"),
    ]


def test_a_booked_integration_session_stops_the_overdue_escalation(h: Harness) -> None:
    h.put_recipient("co-1", role="coordinator")
    h.deliver(f.integration_overdue("th-ben"))
    from kap_shared.events.enums import Phase

    h.deliver(f.session_scheduled("sess-int", phase=Phase.INTEGRATION))
    h.clock.advance(48 * 3600)
    assert h.fire_timers() == 0
    assert _escalations(h) == []


def test_critical_alert_with_nobody_to_tell_first_still_escalates(h: Harness) -> None:
    assert h.put_levels("site-a", LEVELS).status_code == 200
    event = f.vitals_alert(session_id="sess-unknown")  # no session, no plan, no prescriber known
    h.deliver(event)
    assert h.notifications() == []
    h.clock.set(_opened_at(h) + timedelta(seconds=120))
    assert h.fire_timers() == 1
    assert _escalations(h) == [
        {"source_event_id": str(event.event_id), "level": 1, "to_recipient_ids": ["oncall-1"]}
    ]
    assert [n["recipient_id"] for n in h.notifications()] == ["oncall-1"]
