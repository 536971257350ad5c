"""One trace from the HTTP request through every Kafka hop to the notification:
the W3C `traceparent` a client sends to intake reappears, same trace id, on
PatientScreened, on scheduling's TreatmentPlanCreated and on notifications'
NotificationSent."""

from __future__ import annotations

import json
import secrets

import httpx
import pytest
from flows import ELIGIBLE_SCREENING, REFERRAL, apis, create_clinic
from support import TopicReader

from kap_local.platform import Platform
from kap_shared.events import topics

pytestmark = [pytest.mark.kafka, pytest.mark.e2e]


def _trace_id(headers: dict[str, bytes]) -> str:
    return headers["traceparent"].decode().split("-")[1]


async def test_trace_crosses_intake_scheduling_notifications(platform: Platform) -> None:
    clinic = await create_clinic(platform)
    trace_id = secrets.token_hex(16)
    incoming = f"00-{trace_id}-{secrets.token_hex(8)}-01"
    intake = apis(platform)["intake"]
    headers = {**intake.headers(*clinic.as_("nurse")), "traceparent": incoming}

    async with httpx.AsyncClient(base_url=platform.url("intake"), headers=headers) as client:
        created = await client.post("/patients", json={**REFERRAL, "site_id": clinic.site_id})
        patient_id = created.json()["patient_id"]
        screened = await client.post(f"/patients/{patient_id}/screenings", json=ELIGIBLE_SCREENING)
    assert screened.status_code == 201
    # The response continues the caller's trace (a child span of it).
    assert screened.headers["traceparent"].split("-")[1] == trace_id

    def hops(reader: TopicReader) -> dict[str, str]:
        return {
            json.loads(value)["event_type"]: _trace_id(h)
            for key, value, h in reader.raw
            if key == patient_id.encode()
        }

    readers = {
        name: TopicReader(platform.bootstrap, topic)
        for name, topic in (
            ("intake", topics.INTAKE_EVENTS),
            ("scheduling", topics.SCHEDULING_EVENTS),
            ("notifications", topics.NOTIFICATIONS_EVENTS),
        )
    }
    try:
        await readers["intake"].wait_for(lambda _: "PatientScreened" in hops(readers["intake"]))
        await readers["scheduling"].wait_for(
            lambda _: "TreatmentPlanCreated" in hops(readers["scheduling"])
        )
        await readers["notifications"].wait_for(
            lambda _: "NotificationSent" in hops(readers["notifications"])
        )
        chain = {name: hops(reader) for name, reader in readers.items()}
        assert chain["intake"]["PatientReferred"] == trace_id
        assert chain["intake"]["PatientScreened"] == trace_id
        assert chain["scheduling"]["TreatmentPlanCreated"] == trace_id
        assert chain["scheduling"]["PhaseAdvanced"] == trace_id
        assert chain["notifications"]["NotificationSent"] == trace_id
    finally:
        for reader in readers.values():
            await reader.close()

    # Logs carry the trace id too: scheduling logged its processing under it.
    log = (platform.work_dir / "logs" / "scheduling.log").read_text()
    assert any(
        f'"trace_id": "{trace_id}"' in line and "consumer.processed" in line
        for line in log.splitlines()
    )
