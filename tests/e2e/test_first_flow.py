"""Issue 2's first flow, end to end, over HTTP and real Kafka:
referral -> eligible screening -> treatment plan -> therapist's inbox."""

from __future__ import annotations

import json

import httpx
import pytest
from flows import REFERRAL, apis, create_clinic, refer_and_screen
from support import TopicReader, eventually, outbox_drained

from kap_local.platform import Platform
from kap_shared.events import topics

pytestmark = [pytest.mark.kafka, pytest.mark.e2e]


async def test_referral_to_therapist_inbox_with_followable_chain(platform: Platform) -> None:
    clinic = await create_clinic(platform)
    patient_id = await refer_and_screen(platform, clinic)

    async with (
        TopicReader(platform.bootstrap, topics.INTAKE_EVENTS) as intake_topic,
        TopicReader(platform.bootstrap, topics.SCHEDULING_EVENTS) as scheduling_topic,
        TopicReader(platform.bootstrap, topics.NOTIFICATIONS_EVENTS) as notifications_topic,
    ):
        await intake_topic.wait_for(lambda _: len(intake_topic.of_patient(patient_id)) >= 2)
        referred, screened = intake_topic.of_patient(patient_id)
        assert [referred["event_type"], screened["event_type"]] == [
            "PatientReferred",
            "PatientScreened",
        ]
        assert screened["data"]["outcome"] == "eligible"
        assert screened["correlation_id"] == referred["correlation_id"]
        assert screened["site_id"] == clinic.site_id

        await scheduling_topic.wait_for(lambda _: len(scheduling_topic.of_patient(patient_id)) >= 2)
        plan_created, phase = scheduling_topic.of_patient(patient_id)
        assert plan_created["event_type"] == "TreatmentPlanCreated"
        assert plan_created["data"]["therapist_id"] == clinic.therapist
        assert plan_created["data"]["prescriber_id"] == clinic.prescriber
        assert plan_created["data"]["protocol"] == "ketamine_iv_induction"
        assert phase["event_type"] == "PhaseAdvanced"
        assert phase["data"] == {
            "plan_id": plan_created["data"]["plan_id"],
            "from_phase": None,
            "to_phase": "preparation",
        }
        for event in (plan_created, phase):
            # The chain can be followed back to the screening that caused it.
            assert event["causation_id"] == screened["event_id"]
            assert event["correlation_id"] == referred["correlation_id"]

        notifications = apis(platform)["notifications"]

        async def therapist_inbox() -> list[dict[str, object]]:
            response = await notifications.request("GET", "/inbox", as_=clinic.as_("therapist"))
            assert response.status_code == 200, response.text
            items: list[dict[str, object]] = response.json()
            return [n for n in items if n["patient_id"] == patient_id]

        inbox = await eventually(therapist_inbox)
        assert len(inbox) == 1
        assert inbox[0]["source_event_id"] == plan_created["event_id"]
        assert inbox[0]["channel"] == "in_app"

        await notifications_topic.wait_for(
            lambda events: any(
                e["event_type"] == "NotificationSent"
                and e["data"]["notification_id"] == inbox[0]["notification_id"]
                for e in events
            )
        )
        sent = [
            e
            for e in notifications_topic.of_patient(patient_id)
            if e["event_type"] == "NotificationSent"
        ]
        assert {e["data"]["recipient_id"] for e in sent} == {clinic.therapist, clinic.prescriber}
        assert all(e["causation_id"] == plan_created["event_id"] for e in sent)

        # No PHI on the wire: the referral's name, birth date and contacts never leave intake.
        for reader in (intake_topic, scheduling_topic, notifications_topic):
            for key, value, headers in reader.raw:
                for phi in ("Zelphine", "Quorrowitz", str(REFERRAL["date_of_birth"]), "+15550100"):
                    assert phi.encode() not in value
                if key == patient_id.encode():
                    # CONTRACT section 1: key = patient_id, event_type and content-type headers.
                    assert headers["event_type"] == json.loads(value)["event_type"].encode()
                    assert headers["content-type"] == b"application/json"
                    assert headers["traceparent"].startswith(b"00-")


async def test_bad_referral_is_422_and_publishes_nothing(platform: Platform) -> None:
    clinic = await create_clinic(platform)
    intake = apis(platform)["intake"]
    async with TopicReader(platform.bootstrap, topics.INTAKE_EVENTS) as reader:
        await outbox_drained(platform.url("intake"))
        await reader.read_to_end()
        before = len(reader.raw)
        response = await intake.request(
            "POST",
            "/patients",
            as_=clinic.as_("nurse"),
            json_body={**REFERRAL, "site_id": clinic.site_id, "indications": ["headache"]},
        )
        assert response.status_code == 422
        error = response.json()["error"]
        assert error["code"] == "validation_error"
        assert "indications" in error["message"]
        # Had it stored an event, that event would be on the topic once the outbox is
        # drained.
        await outbox_drained(platform.url("intake"))
        await reader.read_to_end()
        assert len(reader.raw) == before


async def test_metrics_show_consumption_and_lag(platform: Platform) -> None:
    clinic = await create_clinic(platform)
    await refer_and_screen(platform, clinic)

    async def scraped() -> str | None:
        async with httpx.AsyncClient(base_url=platform.url("scheduling")) as client:
            body = (await client.get("/metrics")).text
        consumed = 'kap_events_consumed_total{event_type="PatientScreened",outcome="processed"'
        return body if consumed in body and "kap_consumer_lag{" in body else None

    body = await eventually(scraped)
    assert 'kap_consumer_lag{partition="0",topic="kap.intake.events.v1"}' in body
    assert "kap_outbox_backlog" in body
    assert 'kap_http_requests_total{method="POST",route="/sites",status="201"}' in body
