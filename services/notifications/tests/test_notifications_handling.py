"""Events through the consumer path: care-team view, routing, the rows and
events written in the consumer's unit of work, redelivery."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import event as sa_event

from kap_notifications.adapters.tables import Notification
from kap_notifications.handlers.inbox import NewNotification
from kap_shared.events import Envelope
from kap_shared.events.enums import Phase, Severity
from kap_shared.testing import rows

from . import factories as f
from .conftest import Harness, ts

CONTACT: dict[str, Any] = {"email": "ada@clinic.example", "phone": "+15550100200"}


def _team(h: Harness) -> None:
    h.deliver(f.plan_created())
    h.deliver(f.session_scheduled())


def told(h: Harness, event: Envelope) -> list[tuple[str, str, str]]:
    """Deliver `event`; whom it told, on which channel, how urgently."""
    h.deliver(event)
    caused = h.notifications(f"source_event_id = '{event.event_id}'")
    return [(n["recipient_id"], n["channel"], n["priority"]) for n in caused]


def test_critical_vitals_alert_pages_session_team_by_sms_and_in_app(h: Harness) -> None:
    h.put_recipient("rx-ada", **CONTACT)
    h.put_recipient("th-ben", role="therapist", phone="+15550100201")
    _team(h)
    before = len(h.outbox())
    event = f.vitals_alert()

    assert h.deliver(event) is True

    mine = h.notifications(f"source_event_id = '{event.event_id}'")
    assert [(n["recipient_id"], n["channel"], n["priority"], n["status"]) for n in mine] == [
        ("rx-ada", "in_app", "stat", "delivered"),
        ("rx-ada", "sms", "stat", "pending"),
        ("th-ben", "in_app", "stat", "delivered"),
        ("th-ben", "sms", "stat", "pending"),
    ]
    assert {n["alert_id"] for n in mine} == {str(event.event_id)}
    # In-app rows are delivered by being stored: announced at once, in the same transaction.
    sent = h.outbox()[before:]
    assert [e["event_type"] for e in sent] == ["NotificationSent", "NotificationSent"]
    assert {e["data"]["channel"] for e in sent} == {"in_app"}
    assert {e["data"]["priority"] for e in sent} == {"stat"}
    assert {e["causation_id"] for e in sent} == {str(event.event_id)}
    # SMS waits for the delivery worker: nothing has been sent yet.
    assert h.sms.requests == []


def test_an_alert_goes_to_its_sessions_team_else_the_plan_team_read_with_one_query(
    h: Harness,
) -> None:
    """The session's team and the plan's team are read together (one statement: each is a
    round trip to the driver's thread), and kept apart: the session's team is told first."""
    h.deliver(f.plan_created(prescriber_id="rx-plan", therapist_id="th-plan"))
    h.deliver(f.session_scheduled(prescriber_id="rx-session", therapist_id="th-session"))
    team_reads: list[str] = []

    def record(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        if "FROM session_teams" in statement or "FROM care_teams" in statement:
            team_reads.append(statement)

    engine = h.runtime.engine.sync_engine
    sa_event.listen(engine, "before_cursor_execute", record)
    try:
        in_session, unknown_session = f.vitals_alert(), f.vitals_alert(session_id="sess-unknown")
        assert h.deliver(in_session) is True
        assert h.deliver(unknown_session) is True
    finally:
        sa_event.remove(engine, "before_cursor_execute", record)
    assert len(team_reads) == 2  # one per alert
    for event, told in (
        (in_session, ["rx-session", "th-session"]),
        (unknown_session, ["rx-plan", "th-plan"]),
    ):
        mine = h.notifications(f"source_event_id = '{event.event_id}' AND channel = 'in_app'")
        assert [n["recipient_id"] for n in mine] == told


def test_an_events_notification_rows_are_one_statement_with_every_column(h: Harness) -> None:
    """The notifier writes plain records, not mapped objects (the ORM's construction and
    flush were most of an alert's Python): all of an event's rows go in one INSERT, and a
    record names every column of the table, so none is left to a default by omission."""
    assert sorted(NewNotification.model_fields) == sorted(
        Notification.__table__.columns.keys()  # type: ignore[attr-defined]
    )
    h.put_recipient("rx-ada", **CONTACT)
    _team(h)
    inserts: list[str] = []

    def record(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        if statement.startswith("INSERT INTO notifications"):
            inserts.append(statement)

    engine = h.runtime.engine.sync_engine
    sa_event.listen(engine, "before_cursor_execute", record)
    try:
        event = f.vitals_alert()
        assert h.deliver(event) is True
    finally:
        sa_event.remove(engine, "before_cursor_execute", record)
    assert len(inserts) == 1
    columns = "attempts, lease_until, acknowledged_at, created_at IS NOT NULL"
    where = f"source_event_id = '{event.event_id}'"
    stored = rows(h.db, f"SELECT {columns} FROM notifications WHERE {where}")  # noqa: S608
    # both clinicians in-app, and SMS to the one with a phone; no column left out
    assert stored == [(0, None, None, 1)] * 3


def test_critical_alert_without_a_phone_still_reaches_the_inbox(h: Harness) -> None:
    _team(h)
    event = f.vitals_alert()
    h.deliver(event)
    mine = h.notifications(f"source_event_id = '{event.event_id}'")
    assert [(n["recipient_id"], n["channel"]) for n in mine] == [
        ("rx-ada", "in_app"),
        ("th-ben", "in_app"),
    ]


def test_warning_vitals_alert_is_in_app_urgent_and_opens_no_alert(h: Harness) -> None:
    h.put_recipient("rx-ada", **CONTACT)
    _team(h)
    event = f.vitals_alert(Severity.WARNING)
    h.deliver(event)
    mine = h.notifications(f"source_event_id = '{event.event_id}'")
    assert {(n["channel"], n["priority"]) for n in mine} == {("in_app", "urgent")}
    assert {n["alert_id"] for n in mine} == {None}
    assert rows(h.db, "SELECT count(*) FROM alerts") == [(0,)]


def test_safety_concern_goes_urgent_by_sms_and_in_app_to_the_plan_team(h: Harness) -> None:
    h.put_recipient("rx-ada", **CONTACT)
    h.deliver(f.plan_created())
    assert told(h, f.safety_concern()) == [
        ("rx-ada", "in_app", "urgent"),
        ("rx-ada", "sms", "urgent"),
        ("th-ben", "in_app", "urgent"),
    ]


def test_screening_review_goes_to_the_registered_prescribers_of_the_site(h: Harness) -> None:
    h.put_recipient("rx-1", sites=["site-a"], email="rx1@clinic.example")
    h.put_recipient("rx-2", sites=["site-a", "site-b"])
    h.put_recipient("rx-b", sites=["site-b"])
    h.put_recipient("th-1", role="therapist", sites=["site-a"])
    assert told(h, f.screened()) == [
        ("rx-1", "email", "routine"),
        ("rx-1", "in_app", "routine"),
        ("rx-2", "in_app", "routine"),
    ]


def test_screening_review_without_registered_prescribers_uses_known_care_teams(
    h: Harness,
) -> None:
    h.deliver(f.plan_created(prescriber_id="rx-known"))
    h.deliver(f.plan_created("plan-b", patient_id="pt-b", site_id="site-b", prescriber_id="rx-b"))
    event = f.screened(reasons=("MBC-1",))
    h.deliver(event)
    mine = h.notifications(f"source_event_id = '{event.event_id}'")
    # MBC-1 at a re-screening of a patient with a plan reaches the plan's therapist too.
    assert [(n["recipient_id"], n["priority"]) for n in mine] == [
        ("rx-known", "urgent"),
        ("th-ben", "urgent"),
    ]


def test_screening_review_with_mbc_1_before_any_plan_reaches_the_prescribers_only(
    h: Harness,
) -> None:
    h.deliver(f.plan_created("plan-b", patient_id="pt-b", prescriber_id="rx-b"))
    event = f.screened(reasons=("MBC-1",))
    h.deliver(event)
    mine = h.notifications(f"source_event_id = '{event.event_id}'")
    assert [(n["recipient_id"], n["priority"]) for n in mine] == [("rx-b", "urgent")]


def test_session_lifecycle_keeps_the_view_and_tells_the_clinicians_involved(h: Harness) -> None:
    h.put_recipient("th-ben", role="therapist", email="ben@clinic.example")
    h.deliver(f.plan_created())
    booked = f.session_scheduled(prescriber_id=None, room_id="room-9")
    h.deliver(booked)
    assert rows(
        h.db, "SELECT session_id, prescriber_id, therapist_id, room_id, status FROM session_teams"
    ) == [("sess-1", None, "th-ben", "room-9", "scheduled")]
    moved, cancelled = f.session_rescheduled(), f.session_cancelled()
    h.deliver(moved)
    h.deliver(cancelled)

    assert rows(h.db, "SELECT starts_at, status FROM session_teams")[0][1] == "cancelled"
    for event, title in (
        (booked, "Session booked"),
        (moved, "Session moved"),
        (cancelled, "Session cancelled"),
    ):
        mine = h.notifications(f"source_event_id = '{event.event_id}'")
        # The session names no prescriber: the plan's prescriber is involved.
        assert [(n["recipient_id"], n["channel"]) for n in mine] == [
            ("rx-ada", "in_app"),
            ("th-ben", "email"),
            ("th-ben", "in_app"),
        ], title
        assert {n["title"] for n in mine} == {title}


def test_observation_due_goes_to_the_sites_nurses(h: Harness) -> None:
    h.put_recipient("rn-1", role="nurse")
    h.put_recipient("rn-other", role="nurse", sites=["site-b"])
    _team(h)
    assert told(h, f.observation_due()) == [("rn-1", "in_app", "urgent")]


def test_integration_overdue_goes_to_its_therapist_and_opens_an_alert(h: Harness) -> None:
    event = f.integration_overdue("th-due")
    h.deliver(event)
    mine = h.notifications(f"source_event_id = '{event.event_id}'")
    assert [(n["recipient_id"], n["alert_id"]) for n in mine] == [("th-due", str(event.event_id))]
    assert rows(h.db, "SELECT event_type, status, level FROM alerts") == [
        ("IntegrationOverdue", "open", 0)
    ]
    assert rows(h.db, "SELECT kind, key, status FROM scheduled_jobs") == [
        ("escalation", f"escalation:{event.event_id}:1", "pending")
    ]


def test_booking_the_integration_session_resolves_the_overdue_alert(h: Harness) -> None:
    event = f.integration_overdue("th-ben")
    h.deliver(event)
    h.deliver(f.session_scheduled("sess-int", phase=Phase.INTEGRATION))
    assert rows(h.db, "SELECT status FROM alerts") == [("resolved",)]
    assert rows(h.db, "SELECT status FROM scheduled_jobs") == [("cancelled",)]


@pytest.mark.parametrize(
    "make",
    [f.vitals_alert, f.safety_concern, f.screened, f.plan_created, f.integration_overdue],
    ids=["vitals", "safety", "screened", "plan", "overdue"],
)
def test_redelivered_event_adds_nothing(h: Harness, make: object) -> None:
    h.put_recipient("rx-ada", **CONTACT)
    h.put_recipient("th-ben", role="therapist", **CONTACT)
    _team(h)
    event = make()  # type: ignore[operator]
    assert h.deliver(event) is True
    counts = (
        len(h.notifications()),
        len(h.outbox()),
        rows(h.db, "SELECT count(*) FROM scheduled_jobs"),
    )

    assert h.deliver(event) is False

    assert (
        len(h.notifications()),
        len(h.outbox()),
        rows(h.db, "SELECT count(*) FROM scheduled_jobs"),
    ) == counts


def test_quiet_hours_defer_routine_email_but_not_the_inbox(h: Harness) -> None:
    quiet = {"start": "21:00", "end": "07:00", "timezone": "America/New_York"}
    h.put_recipient("th-ben", role="therapist", email="ben@clinic.example", quiet_hours=quiet)
    h.deliver(f.plan_created())
    h.clock.set(datetime(2030, 1, 16, 3, 30, tzinfo=UTC))  # 22:30 in New York
    event = f.session_scheduled()
    h.deliver(event)
    mine = {
        n["channel"]: n
        for n in h.notifications(
            f"recipient_id = 'th-ben' AND source_event_id = '{event.event_id}'"
        )
    }
    assert mine["in_app"]["status"] == "delivered"
    assert mine["email"]["status"] == "pending"
    # Next 07:00 in New York = 12:00 UTC.
    assert ts(mine["email"]["next_attempt_at"]) == datetime(2030, 1, 16, 12, 0, tzinfo=UTC)


def test_quiet_hours_never_hold_back_a_stat_alert(h: Harness) -> None:
    quiet = {"start": "00:00", "end": "23:59", "timezone": "UTC"}
    h.put_recipient("rx-ada", **CONTACT, quiet_hours=quiet)
    _team(h)
    at = h.clock.now
    event = f.vitals_alert()
    h.deliver(event)
    [sms] = h.notifications(f"channel = 'sms' AND source_event_id = '{event.event_id}'")
    assert ts(sms["next_attempt_at"]) - at < timedelta(seconds=1)
