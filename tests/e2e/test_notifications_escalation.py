"""Critical alerts end to end, on real Kafka with the services as processes:
a critical VitalsAlert pages the session team by SMS (a real HTTP webhook in
this test process) and in-app (live on GET /inbox/stream), escalates through
the site's levels when nobody acknowledges, stops when someone does, and
escalates exactly once across a SIGKILL of the notifications process.

The SMS webhook address reaches the notifications process as SMS_WEBHOOK_URL:
this module sets it (with fast timer and delivery polling) on the platform's
notifications process and restarts it, and puts the original environment back
afterwards. Recipients and escalation levels are configured at runtime through
notifications' own HTTP API, as a clinic would.
"""

from __future__ import annotations

import asyncio
import signal
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from flows import ADMIN, unique
from monitoring_flows import Window
from support import Api, SmsWebhook, TopicReader, eventually, live_inbox, produce

from kap_local.platform import Platform, ServiceProcess
from kap_shared.events import VitalsAlert, topics
from kap_shared.events.enums import Severity
from kap_shared.events.envelope import utc_now
from kap_shared.events.monitoring import VitalsAlertData

pytestmark = [pytest.mark.kafka, pytest.mark.e2e]

Event = dict[str, Any]


# -- the clinic, its events -----------------------------------------------------------------------


@dataclass
class Team:
    site_id: str
    prescriber: str
    therapist: str
    oncall: str
    director: str
    phones: dict[str, str]

    def caller(self, who: str, role: str = "prescriber") -> tuple[str, str, list[str]]:
        return (who, role, [self.site_id])


async def _clinic(api: Api, levels: list[tuple[int, str]]) -> Team:
    team = Team(unique("site"), unique("dr"), unique("th"), unique("oncall"), unique("dir"), {})
    for n, (who, role) in enumerate(
        [
            (team.prescriber, "prescriber"),
            (team.therapist, "therapist"),
            (team.oncall, "prescriber"),
            (team.director, "admin"),
        ]
    ):
        team.phones[who] = f"+1555{uuid.uuid4().int % 10**7:07d}{n}"
        response = await api.request(
            "PUT",
            f"/recipients/{who}",
            as_=ADMIN,
            json_body={"role": role, "sites": [team.site_id], "phone": team.phones[who]},
        )
        assert response.status_code == 201, response.text
    by_name = {"oncall": team.oncall, "director": team.director}
    response = await api.request(
        "PUT",
        f"/sites/{team.site_id}/escalation",
        as_=("co-1", "coordinator", [team.site_id]),
        json_body={
            "levels": [
                {"after_seconds": after, "recipient_ids": [by_name[who]]} for after, who in levels
            ]
        },
    )
    assert response.status_code == 200, response.text
    return team


async def _care_team_known(platform: Platform, api: Api, team: Team) -> Window:
    """A patient's plan and checked-in session with the team, announced on the scheduling
    topic; returned once notifications has processed them (the alert comes on another topic)."""
    window = Window(
        platform,
        team.site_id,
        prescriber=team.caller(team.prescriber),
        therapist=team.therapist,
    )
    scheduled = await window.announce(utc_now())

    async def booked() -> bool:
        items = await _inbox(api, team.caller(team.prescriber))
        return any(n["source_event_id"] == str(scheduled.event_id) for n in items)

    await eventually(booked, timeout=60)
    return window


async def _escalating_clinic(
    platform: Platform, notifications: ServiceProcess, director_after: int
) -> tuple[Api, Team, Window]:
    """Notifications' API; a site whose alerts escalate to the on-call prescriber after 2 s
    and to the director after `director_after` s; a checked-in session of its care team,
    known to notifications."""
    api = Api(notifications.url, platform.jwt_secret)
    team = await _clinic(api, [(2, "oncall"), (director_after, "director")])
    return api, team, await _care_team_known(platform, api, team)


async def _raise_critical_alert(platform: Platform, window: Window) -> VitalsAlert:
    alert = VitalsAlert(
        producer="monitoring",
        site_id=window.site_id,
        patient_id=window.patient_id,
        correlation_id=unique("episode"),
        data=VitalsAlertData(
            alert_id=unique("va"),
            session_id=window.session_id,
            severity=Severity.CRITICAL,
            rule_id="KET-MON-BP",
            metric="bp_systolic",
            value=204,
            threshold=200,
            message="BP above 200/120",
        ),
    )
    await produce(platform.bootstrap, topics.MONITORING_EVENTS, [(alert.key, alert.to_json())])
    return alert


async def _escalated_past_earlier_deadlines(
    platform: Platform, window: Window, reader: TopicReader, level: int
) -> str:
    """Raise another critical alert for the patient now and wait until its `level` is on
    the topic. Notifications fires due timers in due order and publishes in that order
    (one patient, one partition), so by then every escalation due earlier has been
    published, or was never going to be. Returns the other alert's id."""
    later = str((await _raise_critical_alert(platform, window)).event_id)
    await reader.wait_for(lambda _: level in _escalations(reader, later), timeout=60)
    await reader.poll(1.0)
    return later


async def _alert_state(api: Api, team: Team, alert_id: str) -> Event:
    response = await api.request(
        "GET", f"/alerts?site_id={team.site_id}", as_=team.caller(team.prescriber)
    )
    assert response.status_code == 200, response.text
    states: list[Event] = response.json()
    [state] = [a for a in states if a["alert_id"] == alert_id]
    return state


def _instant(text: str) -> datetime:
    """A timestamp from an event or the API, as an aware UTC datetime."""
    at = datetime.fromisoformat(text)
    return at if at.tzinfo else at.replace(tzinfo=UTC)  # SQLite gives back naive UTC


async def _inbox(
    api: Api, caller: tuple[str, str, list[str]], channel: str = "in_app"
) -> list[Event]:
    response = await api.request("GET", f"/inbox?limit=500&channel={channel}", as_=caller)
    assert response.status_code == 200, response.text
    items: list[Event] = response.json()
    return items


def _escalations(reader: TopicReader, source: str) -> dict[int, set[str]]:
    """Distinct AlertEscalated event ids per level (the relay is at-least-once)."""
    levels: dict[int, set[str]] = {}
    for event in reader.events:
        if event["event_type"] == "AlertEscalated" and event["data"]["source_event_id"] == source:
            levels.setdefault(event["data"]["level"], set()).add(event["event_id"])
    return levels


# -- the tests ------------------------------------------------------------------------------------


async def test_critical_alert_pages_streams_escalates_and_stops_when_acknowledged(
    platform: Platform, notifications: ServiceProcess, sms_webhook: SmsWebhook
) -> None:
    api, team, window = await _escalating_clinic(platform, notifications, director_after=5)
    async with TopicReader(platform.bootstrap, topics.NOTIFICATIONS_EVENTS) as reader:
        async with live_inbox(api, team.caller(team.prescriber)) as live:
            alert = await _raise_critical_alert(platform, window)
            source = str(alert.event_id)

            # In-app, live on the prescriber's stream.
            async def streamed() -> Event | None:
                return next((n for n in live.notifications if n["source_event_id"] == source), None)

            item = await eventually(streamed, timeout=30, interval=0.05)
            assert (item["priority"], item["channel"], item["recipient_id"]) == (
                "stat",
                "in_app",
                team.prescriber,
            )
            assert item["alert_id"] == source

        # SMS to the prescriber and the therapist, with the notification id as idempotency key.
        paged = {team.phones[team.prescriber], team.phones[team.therapist]}
        await eventually(lambda: paged <= {m["to"] for m in sms_webhook.received}, timeout=30)
        [sms_row] = [
            n
            for n in await _inbox(api, team.caller(team.prescriber), "sms")
            if n["source_event_id"] == source
        ]
        [page] = sms_webhook.to(team.phones[team.prescriber])
        assert page["idempotency_key"] == sms_row["notification_id"]
        assert page["body"].startswith("CRITICAL vitals alert: Session ")
        assert "204" in page["body"]

        # Nobody acknowledges: level 1 after 2 s, to the on-call prescriber.
        await reader.wait_for(lambda _: 1 in _escalations(reader, source), timeout=30)
        [escalated] = [
            e
            for e in reader.events
            if e["event_type"] == "AlertEscalated" and e["data"]["source_event_id"] == source
        ]
        assert escalated["data"]["to_recipient_ids"] == [team.oncall]
        first_at = _instant(item["created_at"])
        escalated_at = _instant(escalated["occurred_at"])
        assert escalated_at - first_at >= timedelta(seconds=2)
        await eventually(lambda: sms_webhook.to(team.phones[team.oncall]), timeout=30)

        # The on-call prescriber acknowledges: AlertAcknowledged, and level 2 never comes.
        [oncall_item] = [
            n for n in await _inbox(api, team.caller(team.oncall)) if n["alert_id"] == source
        ]
        response = await api.request(
            "POST",
            f"/notifications/{oncall_item['notification_id']}/ack",
            as_=team.caller(team.oncall),
        )
        assert response.status_code == 200, response.text
        await reader.wait_for(
            lambda events: any(
                e["event_type"] == "AlertAcknowledged"
                and e["data"]["source_event_id"] == source
                and e["data"]["acknowledged_by"] == team.oncall
                for e in events
            ),
            timeout=30,
        )
        # An alert raised after the acknowledgement reaches level 2 after this one's was due.
        later = await _escalated_past_earlier_deadlines(platform, window, reader, level=2)
        assert set(_escalations(reader, source)) == {1}
        state = await _alert_state(api, team, source)
        assert (state["status"], state["level"]) == ("acknowledged", 1)
        director = team.caller(team.director, "admin")
        assert [n for n in await _inbox(api, director) if n["alert_id"] == source] == []
        director_sms = await _inbox(api, director, "sms")
        assert [n for n in director_sms if n["alert_id"] == source] == []
        later_pages = {n["notification_id"] for n in director_sms if n["alert_id"] == later}
        sent = {m["idempotency_key"] for m in sms_webhook.to(team.phones[team.director])}
        assert sent <= later_pages


async def test_sigkill_mid_escalation_still_escalates_exactly_once(
    platform: Platform, notifications: ServiceProcess, sms_webhook: SmsWebhook
) -> None:
    api, team, window = await _escalating_clinic(platform, notifications, director_after=4)
    async with TopicReader(platform.bootstrap, topics.NOTIFICATIONS_EVENTS) as reader:
        alert = await _raise_critical_alert(platform, window)
        source = str(alert.event_id)
        await reader.wait_for(lambda _: 1 in _escalations(reader, source), timeout=30)
        opened_at = _instant((await _alert_state(api, team, source))["opened_at"])
        level_2_due = opened_at + timedelta(seconds=4)

        # Level 1 is out; level 2 is due 2 s later. Crash now, stay down past it.
        notifications.kill(signal.SIGKILL)
        await eventually(lambda: utc_now() > level_2_due, timeout=30, interval=0.1)
        notifications.start()
        await asyncio.to_thread(notifications.wait_ready)

        await reader.wait_for(lambda _: 2 in _escalations(reader, source), timeout=60)
        # Any duplicate of either level would be published before a later alert's level 1.
        await _escalated_past_earlier_deadlines(platform, window, reader, level=1)

        levels = _escalations(reader, source)
        assert {level: len(ids) for level, ids in levels.items()} == {1: 1, 2: 1}
        director = team.caller(team.director, "admin")
        director_items = [n for n in await _inbox(api, director) if n["alert_id"] == source]
        assert [n["escalation_level"] for n in director_items] == [2]
        oncall_items = [
            n for n in await _inbox(api, team.caller(team.oncall)) if n["alert_id"] == source
        ]
        assert [n["escalation_level"] for n in oncall_items] == [1]
        # The director's page went out (at least once, under its one idempotency key).
        [page] = [n for n in await _inbox(api, director, "sms") if n["alert_id"] == source]
        director_phone = team.phones[team.director]
        await eventually(
            lambda: (
                page["notification_id"]
                in {m["idempotency_key"] for m in sms_webhook.to(director_phone)}
            ),
            timeout=30,
        )
