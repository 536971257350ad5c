"""HTTP API: recipients, site escalation levels, acknowledgement, inbox filters;
validation (422 naming the field) and auth (CONTRACT section 4: roles x sites)."""

from __future__ import annotations

from typing import Any

import pytest

from kap_shared.events import decode
from kap_shared.events.topics import NOTIFICATIONS_EVENTS
from kap_shared.testing import named_cases, rows, token

from . import factories as f
from .conftest import ADMIN, Harness

Caller = tuple[str, str, list[str]]
FULL: dict[str, Any] = {
    "role": "prescriber",
    "sites": ["site-a"],
    "email": "ada@clinic.example",
    "phone": "+15550100200",
    "channels": {"routine": ["in_app"], "stat": ["sms", "email"]},
    "quiet_hours": {"start": "21:00", "end": "07:00", "timezone": "America/New_York"},
}


# -- PUT/GET /recipients ------------------------------------------------------------------------


def test_put_recipient_creates_then_replaces(h: Harness) -> None:
    created = h.client.put("/recipients/rx-ada", json=FULL, headers=token(*ADMIN))
    assert created.status_code == 201, created.text
    body = created.json()
    assert body["clinician_id"] == "rx-ada"
    assert body["quiet_hours"] == FULL["quiet_hours"]
    assert body["channels"] == FULL["channels"]
    assert (body["email"], body["phone"], body["updated_by"]) == (
        "ada@clinic.example",
        "+15550100200",
        "admin-1",
    )

    replaced = h.client.put(
        "/recipients/rx-ada",
        json={"role": "prescriber", "sites": ["site-b"]},
        headers=token(*ADMIN),
    )
    assert replaced.status_code == 200
    assert replaced.json()["sites"] == ["site-b"]
    assert replaced.json()["email"] is None
    assert rows(h.db, "SELECT clinician_id, site_id FROM recipient_sites") == [("rx-ada", "site-b")]
    got = h.client.get("/recipients/rx-ada", headers=token(*ADMIN))
    assert got.status_code == 200
    assert got.json() == replaced.json()


def test_recipient_writes_emit_no_events(h: Harness) -> None:
    h.client.put("/recipients/rx-ada", json=FULL, headers=token(*ADMIN))
    assert h.outbox() == []


@pytest.mark.parametrize(
    ("patch", "field"),
    [
        ({"phone": "555-0100"}, "phone"),
        ({"email": "not-an-email"}, "email"),
        ({"role": "device"}, "role"),
        ({"sites": []}, "sites"),
        ({"sites": ["site-a", "site-a"]}, "sites"),
        ({"channels": {"sometimes": ["sms"]}}, "channels.sometimes.[key]"),
        ({"channels": {"stat": ["pager"]}}, "channels.stat[0]"),
        ({"channels": {"stat": ["sms", "sms"]}}, "channels.stat"),
        (
            {"quiet_hours": {"start": "25:00", "end": "07:00", "timezone": "UTC"}},
            "quiet_hours.start",
        ),
        (
            {"quiet_hours": {"start": "21:00", "end": "07:00", "timezone": "Mars/Base"}},
            "quiet_hours.timezone",
        ),
        ({"quiet_hours": {"start": "07:00", "end": "07:00", "timezone": "UTC"}}, "quiet_hours"),
        ({"nickname": "Ada"}, "nickname"),
    ],
)
def test_put_recipient_422_names_the_field(h: Harness, patch: dict[str, Any], field: str) -> None:
    response = h.client.put("/recipients/rx-ada", json={**FULL, **patch}, headers=token(*ADMIN))
    assert response.status_code == 422, response.text
    error = response.json()["error"]
    assert error["code"] == "validation_error"
    assert field in [d["field"] for d in error["details"]], error
    assert rows(h.db, "SELECT count(*) FROM recipients") == [(0,)]


def test_contact_details_are_not_logged(h: Harness, capsys: pytest.CaptureFixture[str]) -> None:
    h.client.put("/recipients/rx-ada", json=FULL, headers=token(*ADMIN))
    h.deliver(f.plan_created())
    h.deliver(f.session_scheduled())
    h.deliver(f.vitals_alert())
    h.deliver_due()
    logged = capsys.readouterr().out
    assert "delivery.delivered" in logged  # deliveries are logged ...
    assert "+15550100200" not in logged  # ... contact details never
    assert "ada@clinic.example" not in logged
    for event in h.outbox():
        assert "+15550100200" not in str(event)
        assert "ada@clinic" not in str(event)


WRITE_CASES: list[tuple[str, Caller, dict[str, Any], int]] = [
    ("admin anywhere", ("a", "admin", ["*"]), {}, 201),
    ("coordinator of the site", ("c", "coordinator", ["site-a"]), {}, 201),
    ("coordinator of another site", ("c", "coordinator", ["site-b"]), {}, 403),
    (
        "coordinator of one of two sites",
        ("c", "coordinator", ["site-a"]),
        {"sites": ["site-a", "site-b"]},
        403,
    ),
    ("the clinician themself", ("rx-ada", "prescriber", ["site-a"]), {}, 201),
    ("themself with another role", ("rx-ada", "prescriber", ["site-a"]), {"role": "admin"}, 403),
    (
        "themself at a site not theirs",
        ("rx-ada", "prescriber", ["site-a"]),
        {"sites": ["site-b"]},
        403,
    ),
    ("another prescriber", ("rx-eve", "prescriber", ["site-a"]), {}, 403),
    ("a nurse", ("rn-1", "nurse", ["site-a"]), {}, 403),
    ("a device", ("dev-1", "device", ["*"]), {}, 403),
]


@pytest.mark.parametrize(("caller", "patch", "status"), named_cases(WRITE_CASES))
def test_put_recipient_auth(h: Harness, caller: Caller, patch: dict[str, Any], status: int) -> None:
    response = h.client.put("/recipients/rx-ada", json={**FULL, **patch}, headers=token(*caller))
    assert response.status_code == status, response.text
    if status == 403:
        assert response.json()["error"]["code"] == "forbidden"


def test_clinician_keeps_the_sites_their_token_does_not_cover(h: Harness) -> None:
    h.client.put(
        "/recipients/rx-ada", json={**FULL, "sites": ["site-a", "site-b"]}, headers=token(*ADMIN)
    )
    me = token("rx-ada", "prescriber", ["site-a"])
    keep = h.client.put(
        "/recipients/rx-ada", json={**FULL, "sites": ["site-a", "site-b"]}, headers=me
    )
    drop = h.client.put("/recipients/rx-ada", json=FULL, headers=me)
    assert (keep.status_code, drop.status_code) == (200, 403)


def test_coordinator_cannot_take_over_another_sites_clinician(h: Harness) -> None:
    h.client.put("/recipients/rx-ada", json={**FULL, "sites": ["site-b"]}, headers=token(*ADMIN))
    response = h.client.put(
        "/recipients/rx-ada", json=FULL, headers=token("c", "coordinator", ["site-a"])
    )
    assert response.status_code == 403


READ_CASES: list[tuple[str, Caller, int]] = [
    ("themself", ("rx-ada", "prescriber", ["site-a"]), 200),
    ("coordinator of the site", ("c", "coordinator", ["site-a"]), 200),
    ("coordinator elsewhere", ("c", "coordinator", ["site-b"]), 403),
    ("a colleague", ("th-ben", "therapist", ["site-a"]), 403),
]


@pytest.mark.parametrize(("caller", "status"), named_cases(READ_CASES))
def test_get_recipient_auth(h: Harness, caller: Caller, status: int) -> None:
    h.client.put("/recipients/rx-ada", json=FULL, headers=token(*ADMIN))
    assert h.client.get("/recipients/rx-ada", headers=token(*caller)).status_code == status


def test_get_unknown_recipient_404(h: Harness) -> None:
    response = h.client.get("/recipients/nobody", headers=token(*ADMIN))
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"


@pytest.mark.parametrize("path", ["/recipients/rx-ada", "/sites/site-a/escalation"])
@pytest.mark.parametrize("headers", [{}, {"Authorization": "Bearer garbage"}], ids=["none", "bad"])
def test_401_without_a_valid_token(h: Harness, path: str, headers: dict[str, str]) -> None:
    assert h.client.put(path, json={}, headers=headers).status_code == 401
    assert h.client.get(path, headers=headers).status_code == 401


# -- PUT/GET /sites/{site_id}/escalation ---------------------------------------------------------

LEVELS = [
    {"after_seconds": 120, "recipient_ids": ["oncall-1"]},
    {"after_seconds": 600, "recipient_ids": ["director-1"]},
]


def test_put_and_get_escalation_levels(h: Harness) -> None:
    response = h.put_levels("site-a", LEVELS)
    assert response.status_code == 200, response.text
    assert response.json()["levels"] == LEVELS
    got = h.client.get("/sites/site-a/escalation", headers=token("th", "therapist", ["site-a"]))
    assert got.status_code == 200
    assert got.json()["levels"] == LEVELS
    assert got.json()["updated_by"] == "admin-1"
    empty = h.client.get("/sites/site-b/escalation", headers=token(*ADMIN))
    assert empty.json() == {
        "site_id": "site-b",
        "levels": [],
        "updated_by": None,
        "updated_at": None,
    }


@pytest.mark.parametrize(
    ("levels", "field"),
    [
        ([{"after_seconds": 0, "recipient_ids": ["a"]}], "levels[0].after_seconds"),
        ([{"after_seconds": 10, "recipient_ids": []}], "levels[0].recipient_ids"),
        ([{"after_seconds": 10, "recipient_ids": ["a", "a"]}], "levels[0].recipient_ids"),
        (
            [
                {"after_seconds": 300, "recipient_ids": ["a"]},
                {"after_seconds": 300, "recipient_ids": ["b"]},
            ],
            "levels[1].after_seconds",
        ),
        ([{"after_seconds": 10}], "levels[0].recipient_ids"),
    ],
)
def test_put_escalation_422_names_the_field(
    h: Harness, levels: list[dict[str, Any]], field: str
) -> None:
    response = h.put_levels("site-a", levels)
    assert response.status_code == 422, response.text
    assert field in [d["field"] for d in response.json()["error"]["details"]]
    assert rows(h.db, "SELECT count(*) FROM escalation_policies") == [(0,)]


ESCALATION_CASES: list[tuple[str, Caller, int]] = [
    ("admin anywhere", ("a", "admin", ["*"]), 200),
    ("admin of the site", ("a", "admin", ["site-a"]), 200),
    ("coordinator of the site", ("c", "coordinator", ["site-a"]), 200),
    ("coordinator of another site", ("c", "coordinator", ["site-b"]), 403),
    ("prescriber of the site", ("rx", "prescriber", ["site-a"]), 403),
    ("therapist of the site", ("th", "therapist", ["site-a"]), 403),
    ("nurse of the site", ("rn", "nurse", ["site-a"]), 403),
    ("device", ("dev", "device", ["site-a"]), 403),
]


@pytest.mark.parametrize(("caller", "status"), named_cases(ESCALATION_CASES))
def test_put_escalation_auth(h: Harness, caller: Caller, status: int) -> None:
    assert h.put_levels("site-a", LEVELS, as_=caller).status_code == status


def test_get_escalation_needs_the_site(h: Harness) -> None:
    other = token("th", "therapist", ["site-b"])
    assert h.client.get("/sites/site-a/escalation", headers=other).status_code == 403


# -- POST /notifications/{id}/ack ----------------------------------------------------------------


def _alert_notification(h: Harness) -> dict[str, Any]:
    h.deliver(f.plan_created())
    h.deliver(f.session_scheduled())
    h.deliver(f.vitals_alert())
    [row] = h.notifications(
        "recipient_id = 'rx-ada' AND alert_id IS NOT NULL AND channel = 'in_app'"
    )
    return row


def test_ack_emits_alert_acknowledged_once(h: Harness) -> None:
    row = _alert_notification(h)
    caller = token("rx-ada", "prescriber", ["site-a"])

    first = h.client.post(f"/notifications/{row['notification_id']}/ack", headers=caller)
    again = h.client.post(f"/notifications/{row['notification_id']}/ack", headers=caller)

    assert first.status_code == again.status_code == 200
    assert first.json()["acknowledged_now"] is True
    assert again.json()["acknowledged_now"] is False
    assert first.json()["notification"]["acknowledged_by"] == "rx-ada"
    [event] = h.outbox("AlertAcknowledged")
    assert decode(NOTIFICATIONS_EVENTS, event).event_type == "AlertAcknowledged"
    assert event["data"]["notification_id"] == row["notification_id"]
    assert event["data"]["source_event_id"] == row["source_event_id"]
    assert event["data"]["acknowledged_by"] == "rx-ada"
    assert event["causation_id"] == row["source_event_id"]
    assert (event["site_id"], event["patient_id"], event["correlation_id"]) == (
        "site-a",
        "pt-1",
        "episode-pt-1",
    )


def test_routine_notifications_can_be_acknowledged_too(h: Harness) -> None:
    h.deliver(f.plan_created())
    [row] = h.notifications("recipient_id = 'th-ben'")
    response = h.client.post(
        f"/notifications/{row['notification_id']}/ack",
        headers=token("th-ben", "therapist", ["site-a"]),
    )
    assert response.status_code == 200
    assert [e["data"]["source_event_id"] for e in h.outbox("AlertAcknowledged")] == [
        row["source_event_id"]
    ]


ACK_CASES: list[tuple[str, Caller, int]] = [
    ("the recipient", ("rx-ada", "prescriber", ["site-a"]), 200),
    ("the recipient, token for another site", ("rx-ada", "prescriber", ["site-b"]), 200),
    ("a nurse of the site", ("rn-1", "nurse", ["site-a"]), 200),
    ("a therapist of the site", ("th-x", "therapist", ["site-a"]), 200),
    ("a coordinator of the site", ("co-1", "coordinator", ["site-a"]), 200),
    ("an admin anywhere", ("ad-1", "admin", ["*"]), 200),
    ("a prescriber of another site", ("rx-eve", "prescriber", ["site-b"]), 403),
    ("a device of the site", ("dev-1", "device", ["site-a"]), 403),
]


@pytest.mark.parametrize(("caller", "status"), named_cases(ACK_CASES))
def test_ack_auth(h: Harness, caller: Caller, status: int) -> None:
    row = _alert_notification(h)
    response = h.client.post(f"/notifications/{row['notification_id']}/ack", headers=token(*caller))
    assert response.status_code == status, response.text
    assert len(h.outbox("AlertAcknowledged")) == (1 if status == 200 else 0)


def test_ack_unknown_notification_404_and_no_token_401(h: Harness) -> None:
    missing = h.client.post("/notifications/nope/ack", headers=token(*ADMIN))
    assert missing.status_code == 404
    assert missing.json()["error"]["code"] == "not_found"
    assert h.client.post("/notifications/nope/ack").status_code == 401


# -- GET /inbox filters ---------------------------------------------------------------------------


def test_inbox_shows_in_app_by_default_and_delivery_records_on_request(h: Harness) -> None:
    h.client.put("/recipients/rx-ada", json=FULL, headers=token(*ADMIN))
    row = _alert_notification(h)
    caller = token("rx-ada", "prescriber", ["site-a"])

    default = h.client.get("/inbox", headers=caller).json()
    sms = h.client.get("/inbox", params={"channel": "sms"}, headers=caller).json()
    both = h.client.get("/inbox", params=[("channel", "sms"), ("channel", "email")], headers=caller)

    assert {n["channel"] for n in default} == {"in_app"}
    assert [(n["channel"], n["status"], n["priority"]) for n in sms] == [("sms", "pending", "stat")]
    assert {n["channel"] for n in both.json()} == {"sms", "email"}
    for item in (*default, *sms):
        assert "+1555" not in str(item)
    h.client.post(f"/notifications/{row['notification_id']}/ack", headers=caller)
    open_only = h.client.get("/inbox", params={"acknowledged": "false"}, headers=caller).json()
    assert row["notification_id"] not in {n["notification_id"] for n in open_only}
    acked = h.client.get("/inbox", params={"acknowledged": "true"}, headers=caller).json()
    assert [n["notification_id"] for n in acked] == [row["notification_id"]]


def test_inbox_rejects_devices_and_unknown_channels(h: Harness) -> None:
    assert h.client.get("/inbox", headers=token("dev", "device", ["*"])).status_code == 403
    bad = h.client.get("/inbox", params={"channel": "fax"}, headers=token(*ADMIN))
    assert bad.status_code == 422
    assert bad.json()["error"]["details"][0]["field"].startswith("channel")
