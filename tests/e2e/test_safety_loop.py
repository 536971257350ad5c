"""Issue 4's safety loop across all four services, as separate processes on
real Kafka, driven over HTTP:

an esketamine patient is referred, screened, consented and prepared; the
dosing session is booked and checked in at scheduling, which opens the
monitoring window; two blood pressures above 180/110 within 5 minutes raise one
critical VitalsAlert; notifications texts (real webhook) and streams (SSE) it
to the prescriber and therapist, escalates it when nobody acknowledges, and
stops once the prescriber does; discharge is refused at 119 minutes after the
first device and cleared at 120; a PHQ-9 with item 9 = 1 raises a safety
concern that reaches prescriber and therapist and puts dosing on hold at
scheduling until a prescriber clears it.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from flows import register_recipient, set_escalation
from monitoring_flows import STABILITY_CRITERIA, phq9
from scheduling_flows import Course, create_site, enrolled, scheduling
from support import Api, SmsWebhook, TopicReader, eventually, live_inbox, timers_settled

from kap_local.platform import Platform, ServiceProcess
from kap_shared.events import topics

pytestmark = [pytest.mark.kafka, pytest.mark.e2e]

# tests/rules/scheduling.json opens its check-in window early; tests/rules/monitoring.json
# lets its doses be charted up to 130 minutes before check-in (MON-DOSE-2), so that the
# test need not wait two hours for SPR-MON-3.
SITE = "site-safety"
LEVEL_1_AFTER, LEVEL_2_AFTER = 3, 8


def _utc(minutes_ago: float) -> str:
    return (datetime.now(UTC) - timedelta(minutes=minutes_ago)).isoformat()


async def test_vitals_alert_escalation_discharge_and_safety_hold(
    platform: Platform, notifications: ServiceProcess, sms_webhook: SmsWebhook
) -> None:
    secret = platform.jwt_secret
    monitoring = Api(platform.url("monitoring"), secret)
    paging = Api(notifications.url, secret)
    site = await create_site(platform, SITE)
    prescriber, therapist = site.prescribers[0], site.therapists[0]
    oncall, coordinator = f"oncall-{SITE}", site.coordinator
    admin = ("admin-1", "admin", [SITE])

    # -- notifications: contact points and the site's escalation levels -----------------
    phones = {
        who: f"+1555{uuid.uuid4().int % 10**7:07d}" for who in (prescriber, therapist, oncall)
    }
    for who, role in ((prescriber, "prescriber"), (therapist, "therapist"), (oncall, "prescriber")):
        await register_recipient(platform, who, role, SITE, phone=phones[who], as_=admin)
    await set_escalation(
        platform, SITE, [(LEVEL_1_AFTER, oncall), (LEVEL_2_AFTER, coordinator)], as_=admin
    )

    # -- intake and scheduling: to a checked-in esketamine dosing session ----------------
    plan = await enrolled(platform, site, route="intranasal_esketamine")
    patient_id = plan["patient_id"]
    course = Course(platform, site, plan)
    for day in (0, 1):  # preparation sessions (KAP-1 asks none for esketamine; offered here)
        await course.run_session("preparation", site.at(day, "09:00"), room_id=site.rooms[0])
    session_id = await course.check_in("dosing", site.at(2, "09:00"), room_id=site.rooms[0])

    async def window_open() -> bool:
        response = await monitoring.request("GET", f"/sessions/{session_id}", as_=site.nurse_)
        # known from SessionScheduled first; the window opens with SessionCheckedIn (MON-WINDOW-1)
        return response.status_code == 200 and response.json()["status"] == "checked_in"

    await eventually(window_open, timeout=60)

    async def vitals(minutes_ago: float, **values: Any) -> dict[str, Any]:
        body = {"recorded_at": _utc(minutes_ago), "heart_rate": 78, "spo2": 98, **values}
        response = await monitoring.request(
            "POST", f"/sessions/{session_id}/vitals", as_=site.nurse_, json_body=body
        )
        assert response.status_code == 201, response.text
        result: dict[str, Any] = response.json()
        return result

    # Pre-dose BP in range, then two devices (56 mg), the first 119.5 minutes ago.
    await vitals(125, bp_systolic=128, bp_diastolic=82)
    first_device = datetime.now(UTC) - timedelta(minutes=119, seconds=30)
    for device in (1, 2):
        response = await monitoring.request(
            "POST",
            f"/sessions/{session_id}/doses",
            as_=site.nurse_,
            json_body={
                "route": "intranasal_esketamine",
                "agent": "esketamine",
                "dose_mg": 28,
                "device_number": device,
                "administered_at": (first_device + timedelta(minutes=5 * (device - 1))).isoformat(),
                # SPR-PRE-3 and SPR-PRE-7, answered with the first device.
                **(
                    {"nasal_medication_used": False, "concomitant_medications": []}
                    if device == 1
                    else {}
                ),
            },
        )
        assert response.status_code == 201, response.text
    await vitals(1, bp_systolic=132, bp_diastolic=84, respiratory_rate=14, sedation_moaas=5)

    # -- discharge refused before 120 minutes (SPR-MON-3) --------------------------------
    response = await monitoring.request(
        "POST", f"/sessions/{session_id}/discharge", as_=site.nurse_
    )
    assert datetime.now(UTC) - first_device < timedelta(minutes=120)
    assert response.status_code == 409, response.text
    assert response.json()["error"]["code"] == "SPR-MON-3"

    async with (
        TopicReader(platform.bootstrap, topics.MONITORING_EVENTS) as monitoring_topic,
        TopicReader(platform.bootstrap, topics.NOTIFICATIONS_EVENTS) as paging_topic,
    ):
        async with live_inbox(paging, site.as_(prescriber)) as live:
            # -- two readings above 180/110, 3 minutes apart: one critical alert ----------
            await vitals(0.6, bp_systolic=186, bp_diastolic=114)
            await vitals(0.1, bp_systolic=184, bp_diastolic=112)
            await vitals(0.05, bp_systolic=188, bp_diastolic=115)  # still high: no second alert

            def alerts() -> list[dict[str, Any]]:
                return [
                    e
                    for e in monitoring_topic.events
                    if e["event_type"] == "VitalsAlert" and e["data"]["session_id"] == session_id
                ]

            await monitoring_topic.wait_for(lambda _: len(alerts()) >= 1)
            (alert,) = {e["event_id"]: e for e in alerts()}.values()
            assert (alert["data"]["rule_id"], alert["data"]["severity"]) == (
                "KET-MON-BP",
                "critical",
            )

            # SMS to prescriber and therapist (a real webhook), in-app live on the stream.
            await eventually(
                lambda: sms_webhook.to(phones[prescriber]) and sms_webhook.to(phones[therapist])
            )
            streamed = await eventually(
                lambda: [n for n in live.notifications if n["source_event_id"] == alert["event_id"]]
            )
            notification_id = streamed[0]["notification_id"]

            # -- nobody acknowledges: level 1 pages the on-call prescriber ----------------
            def escalated(level: int) -> list[dict[str, Any]]:
                return [
                    e
                    for e in paging_topic.events
                    if e["event_type"] == "AlertEscalated"
                    and e["data"]["source_event_id"] == alert["event_id"]
                    and e["data"]["level"] == level
                ]

            await paging_topic.wait_for(lambda _: bool(escalated(1)), timeout=60)
            # Both levels count from the first notification, so level 2 is due by then.
            level_2_due_by = time.monotonic() + LEVEL_2_AFTER - LEVEL_1_AFTER
            assert escalated(1)[0]["data"]["to_recipient_ids"] == [oncall]
            await eventually(lambda: sms_webhook.to(phones[oncall]))

            # -- the prescriber acknowledges: no level 2 --------------------------------
            response = await paging.request(
                "POST", f"/notifications/{notification_id}/ack", as_=site.as_(prescriber)
            )
            assert response.status_code == 200, response.text
            await paging_topic.wait_for(
                lambda events: any(
                    e["event_type"] == "AlertAcknowledged"
                    and e["data"]["notification_id"] == notification_id
                    for e in events
                )
            )
            # Level 2's time must pass (a duration, not a wait for something); then the
            # notifications service has nothing due left and its outbox is on the broker.
            await asyncio.sleep(max(0.0, level_2_due_by - time.monotonic()) + 0.5)
            await timers_settled(paging.base_url)
            await paging_topic.read_to_end()
            assert escalated(2) == []

        # -- back in range, alert resolved; discharge at 120 minutes ----------------------
        result = await vitals(
            0,
            bp_systolic=134,
            bp_diastolic=86,
            respiratory_rate=14,
            sedation_moaas=5,
            dissociation="none",
        )
        assert result["resolved_alert_ids"] == [alert["data"]["alert_id"]], result
        # The prescriber's documented stability assessment signs the discharge.
        response = await monitoring.request(
            "POST",
            f"/sessions/{session_id}/stability-assessment",
            as_=site.as_(prescriber),
            json_body=STABILITY_CRITERIA,
        )
        assert response.status_code == 201, response.text
        wait = first_device + timedelta(minutes=120, seconds=1) - datetime.now(UTC)
        await asyncio.sleep(max(0.0, wait.total_seconds()))
        response = await monitoring.request(
            "POST", f"/sessions/{session_id}/discharge", as_=site.nurse_
        )
        assert response.status_code == 200, response.text
        await monitoring_topic.wait_for(
            lambda events: any(
                e["event_type"] == "DischargeCleared" and e["data"]["session_id"] == session_id
                for e in events
            )
        )
        cleared = next(
            e
            for e in monitoring_topic.events
            if e["event_type"] == "DischargeCleared" and e["data"]["session_id"] == session_id
        )
        assert cleared["data"]["observed_minutes"] >= 120
        assert cleared["data"]["signed_by"] == prescriber

        # Scheduling completes the dosing session now that monitoring cleared it.
        await course.completed(session_id)

        # -- PHQ-9 item 9 = 1: safety concern, paged, and a dosing hold ------------------
        await phq9(monitoring, patient_id, site.as_(therapist), [1, 1, 0, 0, 0, 0, 0, 0, 1])
        await monitoring_topic.wait_for(
            lambda events: any(
                e["event_type"] == "SafetyConcernRaised" and e["patient_id"] == patient_id
                for e in events
            )
        )
        concern = next(
            e
            for e in monitoring_topic.events
            if e["event_type"] == "SafetyConcernRaised" and e["patient_id"] == patient_id
        )

        async def told(who: str) -> bool:
            response = await paging.request("GET", "/inbox?limit=500", as_=site.as_(who))
            return any(n["source_event_id"] == concern["event_id"] for n in response.json())

        await eventually(lambda: told(prescriber))
        await eventually(lambda: told(therapist))

        async def on_hold() -> list[dict[str, Any]]:
            response = await scheduling(platform).request(
                "GET", f"/patients/{patient_id}/plan", as_=site.coordinator_
            )
            holds: list[dict[str, Any]] = response.json()["holds"]
            return holds

        (hold,) = await eventually(on_hold)
        next_dosing = course.booking("dosing", site.at(3, "09:00"), room_id=site.rooms[0])
        response = await scheduling(platform).request(
            "POST", "/sessions", as_=site.coordinator_, json_body=next_dosing
        )
        assert (response.status_code, response.json()["error"]["code"]) == (409, "SCH-HOLD-1")

        response = await scheduling(platform).request(
            "POST",
            f"/patients/{patient_id}/holds/{hold['hold_id']}/clear",
            as_=site.as_(prescriber),
            json_body={"reason": "Risk assessment done; safety plan in place."},
        )
        assert response.status_code == 200, response.text
        response = await scheduling(platform).request(
            "POST", "/sessions", as_=site.coordinator_, json_body=next_dosing
        )
        assert response.status_code == 201, response.text
