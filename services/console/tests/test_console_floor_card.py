"""The floor card's state and clocks from scheduling's booking and monitoring's
window (pure), and the live reader's tolerant parse of envelopes."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest

from kap_console.domain.floor import CardState, build_card, card_state
from kap_console.domain.live import parse

from .factories import NOW, booking, window


@pytest.mark.parametrize(
    ("scheduled", "monitored", "expected"),
    [
        (booking("scheduled"), None, CardState.BOOKED),
        (booking(), None, CardState.CHECKED_IN),
        (booking(), window(None), CardState.CHECKED_IN),
        (booking(), window(0.5), CardState.DOSING),
        (booking(), window(30), CardState.OBSERVING),
        (booking(), window(30, discharge={"allowed": True, "blockers": []}), CardState.READY),
        (booking(), window(130, status="discharged"), CardState.DISCHARGED),
        (booking("completed", discharge_cleared_at=NOW.isoformat()), None, CardState.DISCHARGED),
        (booking("cancelled"), None, CardState.CANCELLED),
    ],
)
def test_session_state_named_on_the_card(
    scheduled: dict[str, Any], monitored: dict[str, Any] | None, expected: CardState
) -> None:
    assert card_state(scheduled, monitored, NOW) is expected


def test_spr_mon_1_bp_check_due_at_40_minutes_and_overdue_after_50() -> None:
    due = build_card(booking(), window(45), [], NOW)
    assert due.bp_check_due_at == NOW - timedelta(minutes=5)
    assert not due.bp_check_overdue
    late = build_card(booking(), window(51), [], NOW)
    assert late.bp_check_overdue
    done = build_card(booking(), window(51, bp_check_done=True), [], NOW)
    assert done.bp_check_due_at is None
    assert not done.bp_check_overdue


def test_countdown_uses_monitorings_discharge_allowed_at_and_lists_every_blocker() -> None:
    allowed_at = NOW + timedelta(minutes=12)
    blockers = [
        {
            "rule_id": "KET-DIS-6",
            "message": "observed",
            "discharge_allowed_at": allowed_at.isoformat(),
        },
        {"rule_id": "MON-DIS-2", "message": "open critical alert(s): KET-MON-BP"},
    ]
    card = build_card(
        booking(), window(20, discharge={"allowed": False, "blockers": blockers}), [], NOW
    )
    assert card.discharge_allowed_at == allowed_at
    assert [b["rule_id"] for b in card.blockers] == ["KET-DIS-6", "MON-DIS-2"]
    assert card.minutes_since_first_dose == 20


def test_out_of_range_vitals_are_marked_with_the_discharge_rule_they_break() -> None:
    at = NOW.isoformat()
    latest = {
        "spo2": {"value": 90, "recorded_at": at},
        "bp_systolic": {"value": 150, "recorded_at": at},
        "sedation_moaas": {"value": 4, "recorded_at": at},
    }
    card = build_card(booking(), window(30, latest=latest), [], NOW)
    marks = {v.metric: (v.out_of_range, v.rule_id) for v in card.vitals}
    assert marks == {
        "spo2": (True, "KET-DIS-2"),
        "bp_systolic": (False, None),
        "sedation_moaas": (True, "KET-DIS-4"),
    }


def test_only_open_escalations_offer_acknowledgement() -> None:
    escalations = [
        {"alert_id": "a1", "status": "open"},
        {"alert_id": "a2", "status": "acknowledged"},
    ]
    card = build_card(booking(), window(30), escalations, NOW)
    assert [e["alert_id"] for e in card.escalations] == ["a1"]


def test_live_events_carry_ids_and_codes_only() -> None:
    envelope = {
        "event_type": "VitalsAlert",
        "site_id": "site-north",
        "patient_id": "p1",
        "data": {"session_id": "s1", "severity": "critical", "message": "free text"},
    }
    event = parse("kap.monitoring.events.v1", json.dumps(envelope).encode(), {})
    assert event is not None
    assert json.loads(event.to_json()) == {
        "event_type": "VitalsAlert",
        "site_id": "site-north",
        "patient_id": "p1",
        "session_id": "s1",
        "severity": "critical",
        "topic": "kap.monitoring.events.v1",
    }


@pytest.mark.parametrize("raw", [b"not json", b"[1, 2]", b'{"event_type": "X"}', None])
def test_what_is_not_an_envelope_is_skipped(raw: bytes | None) -> None:
    assert parse("t", raw, {}) is None
