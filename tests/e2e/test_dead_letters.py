"""A poison message lands in `<topic>.dlq` with its provenance, and the
partition keeps flowing: the next good message is processed."""

from __future__ import annotations

import json

import pytest
from flows import apis, create_clinic, unique
from support import TopicReader, eventually, produce

from kap_local.platform import Platform
from kap_shared.events import PatientScreened, topics

pytestmark = [pytest.mark.kafka, pytest.mark.e2e]


def _screened(patient_id: str, site_id: str) -> PatientScreened:
    return PatientScreened.model_validate(
        {
            "producer": "intake",
            "site_id": site_id,
            "patient_id": patient_id,
            "correlation_id": unique("corr"),
            "data": {
                "screening_id": unique("scr"),
                "outcome": "eligible",
                "route": "intranasal_esketamine",
                "indications": ["trd"],
                "contraindications": [],
                "reasons": [],
                "baseline": {
                    "phq9_total": 18,
                    "phq9_item9": 0,
                    "gad7_total": 9,
                    "bp_systolic": 128,
                    "bp_diastolic": 82,
                    "heart_rate": 70,
                },
            },
        }
    )


async def test_poison_and_invalid_messages_are_dead_lettered_and_the_next_is_processed(
    platform: Platform,
) -> None:
    clinic = await create_clinic(platform)
    patient_id = unique("pt")
    key = patient_id.encode()  # same key -> same partition as the good message
    invalid = json.loads(_screened(patient_id, clinic.site_id).to_json())
    invalid["data"]["outcome"] = "probably"
    good = _screened(patient_id, clinic.site_id)

    await produce(
        platform.bootstrap,
        topics.INTAKE_EVENTS,
        [(key, b"\x00not json at all"), (key, json.dumps(invalid).encode()), (key, good.to_json())],
    )

    # The good message behind the poison is processed: scheduling made a plan.
    scheduling = apis(platform)["scheduling"]

    async def plan() -> dict[str, object] | None:
        response = await scheduling.request(
            "GET", f"/patients/{patient_id}/plan", as_=clinic.as_("therapist")
        )
        return response.json() if response.status_code == 200 else None

    found = await eventually(plan, timeout=60)
    assert found["protocol"] == "esketamine_trd"

    async with TopicReader(
        platform.bootstrap, topics.dead_letter_topic(topics.INTAKE_EVENTS)
    ) as dlq:

        def mine() -> list[tuple[bytes, dict[str, bytes]]]:
            return [(v, h) for k, v, h in dlq.raw if k == key]

        await dlq.wait_for(lambda _: len(mine()) >= 8, timeout=60)  # 2 messages x 4 groups
        by_group: dict[str, list[dict[str, bytes]]] = {}
        for _value, headers in mine():
            by_group.setdefault(headers["x-dlq-consumer-group"].decode(), []).append(headers)
        # Every service that consumes intake events dead-letters independently.
        assert set(by_group) == {"scheduling", "monitoring", "notifications", "records"}
        for headers_list in by_group.values():
            assert len(headers_list) == 2
            for headers in headers_list:
                assert headers["x-dlq-original-topic"] == topics.INTAKE_EVENTS.encode()
                assert headers["x-dlq-original-partition"].isdigit()
                assert headers["x-dlq-original-offset"].isdigit()
            errors = {h["x-dlq-error-type"] for h in headers_list}
            assert errors == {b"JSONDecodeError", b"ValidationError"}
            assert any(b"data.outcome" in h["x-dlq-error"] for h in headers_list)
        values = {v for v, _h in mine()}
        assert b"\x00not json at all" in values
