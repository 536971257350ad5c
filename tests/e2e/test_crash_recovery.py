"""Nothing lost, nothing twice: services killed with SIGKILL at the worst
moments, restarted, and every expected effect exists exactly once."""

from __future__ import annotations

import asyncio
import signal
from collections import Counter
from typing import Any

import pytest
from flows import REFERRAL, Clinic, apis, create_clinic, refer_and_screen_many
from support import TopicReader, caught_up, eventually, outbox_backlog, outbox_drained

from kap_local.platform import Platform
from kap_shared.events import topics

pytestmark = [pytest.mark.kafka, pytest.mark.e2e]

BURST = 200


async def _inbox(platform: Platform, clinic: Clinic, who: str) -> list[dict[str, Any]]:
    response = await apis(platform)["notifications"].request(
        "GET", "/inbox?limit=500", as_=clinic.as_(who)
    )
    assert response.status_code == 200, response.text
    items: list[dict[str, Any]] = response.json()
    return items


async def test_notifications_sigkilled_mid_burst_delivers_each_notification_once(
    platform: Platform,
) -> None:
    clinic = await create_clinic(platform)
    burst = asyncio.create_task(refer_and_screen_many(platform, clinic, BURST, concurrency=8))

    # Kill notifications as soon as it has started delivering this burst.
    await eventually(lambda: _inbox(platform, clinic, "therapist"), timeout=60, interval=0.05)
    platform["notifications"].kill(signal.SIGKILL)
    patient_ids = await burst
    platform["notifications"].start()
    platform["notifications"].wait_ready()

    async def all_delivered() -> bool:
        return len(await _inbox(platform, clinic, "therapist")) >= BURST

    await eventually(all_delivered, timeout=120)
    await caught_up(platform.url("notifications"))  # a redelivery would come before this

    for who in ("therapist", "prescriber"):
        inbox = await _inbox(platform, clinic, who)
        per_patient = Counter(n["patient_id"] for n in inbox)
        assert set(per_patient) == set(patient_ids), f"{who}: missing notifications"
        assert max(per_patient.values()) == 1, f"{who}: duplicated notifications"
        assert len({n["source_event_id"] for n in inbox}) == BURST

    # Every delivery was announced (at least once; consumers dedupe on event_id).
    async with TopicReader(platform.bootstrap, topics.NOTIFICATIONS_EVENTS) as reader:
        wanted = set(patient_ids)
        await reader.wait_for(
            lambda events: (
                len(
                    {
                        e["data"]["notification_id"]
                        for e in events
                        if e["event_type"] == "NotificationSent" and e["patient_id"] in wanted
                    }
                )
                == 2 * BURST
            ),
            timeout=60,
        )


async def _referred_events(platform: Platform, patient_ids: list[str]) -> dict[str, set[str]]:
    wanted = set(patient_ids)
    async with TopicReader(platform.bootstrap, topics.INTAKE_EVENTS) as reader:
        await reader.wait_for(
            lambda events: (
                wanted <= {e["patient_id"] for e in events if e["event_type"] == "PatientReferred"}
            ),
            timeout=60,
        )
        found: dict[str, set[str]] = {p: set() for p in patient_ids}
        for event in reader.events:
            if event["event_type"] == "PatientReferred" and event["patient_id"] in wanted:
                found[event["patient_id"]].add(event["event_id"])
        return found


async def test_intake_crash_between_commit_and_publish_loses_no_event(platform: Platform) -> None:
    intake = platform["intake"]
    clinic = await create_clinic(platform)
    await outbox_drained(intake.url)  # so that the backlog below is this test's own
    # Hold the crash window open: the relay is paused, so commits happen but nothing
    # is published; then the process dies with SIGKILL.
    intake.env["OUTBOX_RELAY_ENABLED"] = "false"
    intake.restart()
    try:
        api = apis(platform)["intake"]
        patient_ids = []
        for _ in range(20):
            response = await api.request(
                "POST",
                "/patients",
                as_=clinic.as_("nurse"),
                json_body={**REFERRAL, "site_id": clinic.site_id},
            )
            assert response.status_code == 201
            patient_ids.append(response.json()["patient_id"])

        # Committed, and still unsent: the crash comes between commit and publish.
        assert await outbox_backlog(platform.url("intake")) == len(patient_ids)
        async with TopicReader(platform.bootstrap, topics.INTAKE_EVENTS) as reader:
            await reader.read_to_end()
            assert not {e["patient_id"] for e in reader.events} & set(patient_ids)

        intake.kill(signal.SIGKILL)
    finally:
        intake.env.pop("OUTBOX_RELAY_ENABLED")
        intake.stop()
        intake.start()
        intake.wait_ready()

    found = await _referred_events(platform, patient_ids)
    assert all(len(ids) == 1 for ids in found.values()), found


async def test_intake_sigkilled_during_burst_publishes_every_acknowledged_referral(
    platform: Platform,
) -> None:
    intake = platform["intake"]
    clinic = await create_clinic(platform)
    api = apis(platform)["intake"]
    accepted: list[str] = []

    async def refer() -> None:
        try:
            response = await api.request(
                "POST",
                "/patients",
                as_=clinic.as_("nurse"),
                json_body={**REFERRAL, "site_id": clinic.site_id},
            )
        except Exception:  # the connection dies with the process
            return
        if response.status_code == 201:
            accepted.append(response.json()["patient_id"])

    async def burst() -> None:
        for _ in range(10):
            await asyncio.gather(*(refer() for _ in range(10)))

    task = asyncio.create_task(burst())
    await eventually(lambda: len(accepted) >= 30, timeout=30, interval=0.01)
    intake.kill(signal.SIGKILL)
    await task
    intake.start()
    intake.wait_ready()

    assert 30 <= len(accepted) < 100, "the kill must land inside the burst"
    found = await _referred_events(platform, accepted)
    # Every referral the API acknowledged is on the topic, with one event id each.
    assert all(len(ids) == 1 for ids in found.values()), found
