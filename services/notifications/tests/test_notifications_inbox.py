"""TreatmentPlanCreated -> in-app notifications (through the consumer path), the
NotificationSent events they emit, and GET /inbox."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from kap_shared.events import Envelope, decode
from kap_shared.events.topics import NOTIFICATIONS_EVENTS
from kap_shared.testing import rows, token

from .factories import plan_created

Deliver = Callable[[Envelope], bool]
Outbox = Callable[[], list[dict[str, Any]]]


def notifications(db: Path) -> list[tuple[Any, ...]]:
    return rows(
        db,
        "SELECT notification_id, source_event_id, source_event_type, recipient_id, channel, "
        "priority, site_id, patient_id, status FROM notifications ORDER BY recipient_id",
    )


# -- handling --------------------------------------------------------------------------------


def test_plan_created_stores_one_notification_per_recipient(deliver: Deliver, db: Path) -> None:
    event = plan_created()

    assert deliver(event) is True

    stored = notifications(db)
    source = str(event.event_id)
    assert [n[1:] for n in stored] == [
        (
            source,
            "TreatmentPlanCreated",
            "rx-ada",
            "in_app",
            "routine",
            "site-a",
            "pt-1",
            "delivered",
        ),
        (
            source,
            "TreatmentPlanCreated",
            "th-ben",
            "in_app",
            "routine",
            "site-a",
            "pt-1",
            "delivered",
        ),
    ]


def test_each_notification_emits_notification_sent(
    deliver: Deliver, db: Path, outbox: Outbox
) -> None:
    event = plan_created()
    deliver(event)

    ids = {recipient: nid for nid, _, _, recipient, *_ in notifications(db)}
    sent = outbox()
    assert [e["event_type"] for e in sent] == ["NotificationSent", "NotificationSent"]
    assert {e["data"]["recipient_id"]: e["data"]["notification_id"] for e in sent} == ids
    for out in sent:
        assert out["producer"] == "notifications"
        assert out["causation_id"] == str(event.event_id)
        assert out["correlation_id"] == event.correlation_id
        assert (out["patient_id"], out["site_id"]) == ("pt-1", "site-a")
        assert out["data"]["source_event_id"] == str(event.event_id)
        assert out["data"]["channel"] == "in_app"
        assert out["data"]["priority"] == "routine"
        assert decode(NOTIFICATIONS_EVENTS, out).event_type == "NotificationSent"
    assert {t for (t,) in rows(db, "SELECT topic FROM outbox_messages")} == {NOTIFICATIONS_EVENTS}


def test_redelivered_event_adds_nothing(deliver: Deliver, db: Path, outbox: Outbox) -> None:
    event = plan_created()
    deliver(event)

    assert deliver(event) is False

    assert len(notifications(db)) == 2
    assert len(outbox()) == 2
    assert rows(db, "SELECT consumer_group, event_id FROM inbox_messages") == [
        ("notifications", str(event.event_id))
    ]


# -- GET /inbox --------------------------------------------------------------------------------


def test_inbox_returns_only_the_callers_notifications_newest_first(
    client: TestClient, deliver: Deliver
) -> None:
    first = plan_created("plan-1", patient_id="pt-1")
    second = plan_created("plan-2", patient_id="pt-2", prescriber_id="rx-eve")
    deliver(first)
    deliver(second)

    therapist = client.get("/inbox", headers=token("th-ben", "therapist", ["site-a"]))
    prescriber = client.get("/inbox", headers=token("rx-ada", "prescriber", ["site-a"]))

    assert therapist.status_code == 200
    assert [n["source_event_id"] for n in therapist.json()] == [
        str(second.event_id),
        str(first.event_id),
    ]
    assert [n["patient_id"] for n in prescriber.json()] == ["pt-1"]
    newest = therapist.json()[0]
    assert newest["title"] == "New patient assigned"
    assert "plan-2" in newest["body"]
    assert (newest["channel"], newest["priority"], newest["status"]) == (
        "in_app",
        "routine",
        "delivered",
    )
    assert newest["acknowledged_at"] is None


def test_inbox_of_someone_with_no_notifications_is_empty(
    client: TestClient, deliver: Deliver
) -> None:
    deliver(plan_created())
    response = client.get("/inbox", headers=token("nu-cal", "nurse", ["site-a"]))
    assert response.status_code == 200
    assert response.json() == []


def test_inbox_is_filtered_by_the_callers_sites(client: TestClient, deliver: Deliver) -> None:
    deliver(plan_created("plan-a", patient_id="pt-a", site_id="site-a"))
    deliver(plan_created("plan-b", patient_id="pt-b", site_id="site-b"))

    only_a = client.get("/inbox", headers=token("th-ben", "therapist", ["site-a"])).json()
    both = client.get("/inbox", headers=token("th-ben", "therapist", ["site-a", "site-b"])).json()
    wildcard = client.get("/inbox", headers=token("th-ben", "therapist", ["*"]))

    assert [n["site_id"] for n in only_a] == ["site-a"]
    assert [n["site_id"] for n in both] == ["site-b", "site-a"]
    assert wildcard.status_code == 403  # CONTRACT 6.4: '*' is for admin only


def test_inbox_limit(client: TestClient, deliver: Deliver) -> None:
    for n in range(3):
        deliver(plan_created(f"plan-{n}", patient_id=f"pt-{n}"))
    caller = token("th-ben", "therapist", ["site-a"])

    limited = client.get("/inbox", params={"limit": 2}, headers=caller).json()

    assert [n["patient_id"] for n in limited] == ["pt-2", "pt-1"]
    bad = client.get("/inbox", params={"limit": 0}, headers=caller)
    assert bad.status_code == 422
    assert bad.json()["error"]["details"][0]["field"] == "limit"


def test_inbox_limit_counts_only_notifications_the_caller_may_see(
    client: TestClient, deliver: Deliver
) -> None:
    deliver(plan_created("plan-a", patient_id="pt-a", site_id="site-a"))
    deliver(plan_created("plan-b", patient_id="pt-b", site_id="site-b"))  # newer, other site

    response = client.get(
        "/inbox", params={"limit": 1}, headers=token("th-ben", "therapist", ["site-a"])
    )

    assert [n["patient_id"] for n in response.json()] == ["pt-a"]


@pytest.mark.parametrize(
    "headers",
    [{}, {"Authorization": "Bearer garbage"}],
    ids=["no token", "garbage token"],
)
def test_inbox_401_without_a_valid_token(client: TestClient, headers: dict[str, str]) -> None:
    response = client.get("/inbox", headers=headers)
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "unauthenticated"
