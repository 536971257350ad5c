"""Deploy on your own schedule (issue 9, sections 2 and 3), on the real broker:

* a producer that deploys a new event type first: a future type on EVERY topic is
  skipped by every consumer group (counted as `outcome="skipped"`), no dead-letter
  topic receives anything, and the next event behind it on the same partition is
  processed;
* two notifications instances behind one address: a clinician streaming from
  instance A gets the notifications instance B created, and after reconnecting (to
  the other instance) with `Last-Event-ID` gets exactly what was missed.
"""

from __future__ import annotations

import json
import re
import uuid
from typing import Any

import httpx
import pytest
from aiokafka import AIOKafkaProducer
from flows import apis, create_clinic, refer, refer_and_screen_many, screen_eligible
from support import Api, TopicReader, eventually, live_inbox, partition_counts, produce

from kap_local.platform import Platform, ServiceProcess, free_port
from kap_shared.events import topics
from kap_shared.events.catalog import EVENTS_BY_TOPIC

pytestmark = [pytest.mark.kafka, pytest.mark.e2e]

# One future event type per topic (what a newer producer might add).
FUTURE = {topic: f"Future{index}Happened" for index, topic in enumerate(EVENTS_BY_TOPIC)}
# Which groups read which topics (README "Who consumes what").
SKIPPERS = {
    "scheduling": (topics.INTAKE_EVENTS, topics.MONITORING_EVENTS),
    "monitoring": (topics.INTAKE_EVENTS, topics.SCHEDULING_EVENTS),
    "notifications": (topics.INTAKE_EVENTS, topics.SCHEDULING_EVENTS, topics.MONITORING_EVENTS),
}


def future_event(topic: str, patient_id: str, site_id: str) -> bytes:
    return json.dumps(
        {
            "event_id": str(uuid.uuid4()),
            "event_type": FUTURE[topic],
            "schema_version": 1,
            "occurred_at": "2026-12-01T10:00:00Z",
            "producer": "a-newer-release",
            "site_id": site_id,
            "patient_id": patient_id,
            "correlation_id": "future",
            # A shape no current model knows: validating it would fail.
            "data": {"something_new": [1, 2, 3], "outcome": 42},
        }
    ).encode()


async def produce_with_header(bootstrap: str, topic: str, key: bytes, value: bytes) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, enable_idempotence=True)
    await producer.start()
    try:
        event_type = json.loads(value)["event_type"].encode()
        await producer.send_and_wait(
            topic,
            value,
            key=key,
            headers=[("content-type", b"application/json"), ("event_type", event_type)],
        )
    finally:
        await producer.stop()


async def skipped(api: Api) -> set[tuple[str, str]]:
    response = await api.request("GET", "/metrics", as_=("ops", "admin", ["*"]))
    pattern = re.compile(
        r'kap_events_consumed_total\{event_type="([^"]+)",outcome="skipped",topic="([^"]+)"\}'
    )
    found = set()
    for line in response.text.splitlines():
        match = pattern.match(line)
        if match and float(line.rsplit(" ", 1)[1]) > 0:
            found.add((match.group(2), match.group(1)))
    return found


@pytest.mark.parametrize("platform", ["sqlite"], indirect=True)
async def test_a_future_event_type_on_every_topic_is_skipped_and_nothing_is_dead_lettered(
    platform: Platform,
) -> None:
    clinic = await create_clinic(platform)
    api = apis(platform)
    patient_id = await refer(platform, clinic)
    key = patient_id.encode()
    dlqs = {t: TopicReader(platform.bootstrap, topics.dead_letter_topic(t)) for t in FUTURE}
    try:
        # A future type first on every topic, keyed like the patient's real events.
        for topic in FUTURE:
            await produce_with_header(
                platform.bootstrap, topic, key, future_event(topic, patient_id, clinic.site_id)
            )
        # ... and, without the header, the consumers must find the type in the envelope.
        await produce_with_header_less(platform.bootstrap, topics.INTAKE_EVENTS, key, patient_id)

        # The next real events on the same partitions are processed: screening -> plan
        # (scheduling read past the future intake event) -> therapist's inbox
        # (notifications read past the future scheduling event).
        await screen_eligible(platform, clinic, patient_id)

        async def inbox() -> list[dict[str, Any]]:
            got = await api["notifications"].request("GET", "/inbox", as_=clinic.as_("therapist"))
            items: list[dict[str, Any]] = got.json() if got.status_code == 200 else []
            return [i for i in items if i["patient_id"] == patient_id]

        assert len(await eventually(inbox, timeout=90)) == 1

        # Every group counted the future types of its topics as skipped.
        for service, read in SKIPPERS.items():
            expected = {(topic, FUTURE[topic]) for topic in read}

            async def counted(service: str = service, expected: set[Any] = expected) -> bool:
                return expected <= await skipped(api[service])

            await eventually(counted, timeout=60)
        # Monitoring's batch vitals consumer skipped the future vitals record too.

        async def vitals_skipped() -> bool:
            return (topics.MONITORING_VITALS, "other") in await skipped(api["monitoring"])

        await eventually(vitals_skipped, timeout=60)

        # No dead-letter topic holds anything of this patient.
        for dlq in dlqs.values():
            await dlq.poll(timeout=1.0)
            assert [v for k, v, _h in dlq.raw if k == key] == [], dlq.topic
    finally:
        for dlq in dlqs.values():
            await dlq.close()


async def produce_with_header_less(bootstrap: str, topic: str, key: bytes, patient_id: str) -> None:
    value = json.loads(future_event(topic, patient_id, "site-x"))
    value["event_type"] = "AnotherFutureThing"
    await produce(bootstrap, topic, [(key, json.dumps(value).encode())])


# -- two notifications instances -------------------------------------------------------------


async def processed_plans(url: str, api: Api) -> float:
    async with httpx.AsyncClient(base_url=url, timeout=10.0) as http:
        text = (await http.get("/metrics")).text
    total = 0.0
    for line in text.splitlines():
        if (
            line.startswith("kap_events_consumed_total{")
            and 'event_type="TreatmentPlanCreated"' in line
            and 'outcome="processed"' in line
        ):
            total += float(line.rsplit(" ", 1)[1])
    return total


async def assigned(url: str, topic: str) -> bool:
    async with httpx.AsyncClient(base_url=url, timeout=10.0) as http:
        text = (await http.get("/metrics")).text
    return f'kap_consumer_lag{{partition="0",topic="{topic}"}}' in text or any(
        line.startswith("kap_consumer_lag{") and f'topic="{topic}"' in line
        for line in text.splitlines()
    )


@pytest.mark.parametrize("platform", ["sqlite"], indirect=True)
async def test_a_clinician_on_one_instance_gets_what_the_other_instance_created(
    platform: Platform,
) -> None:
    # Two instances share a topic only through its partitions. The session's broker is
    # shared by every test: one that created the platform's topics itself with a single
    # partition would leave B nothing to read, and this test waiting 90 s for nothing.
    partitions = await partition_counts(platform.bootstrap, EVENTS_BY_TOPIC)
    too_few = {topic: n for topic, n in partitions.items() if n < 2}
    assert not too_few, (
        f"topics with fewer than 2 partitions on the session's broker: {too_few}; an earlier "
        "test created them with fewer than a service does (KAFKA_TOPIC_PARTITIONS, 3)"
    )
    a = platform["notifications"]
    b = ServiceProcess(
        "notifications",
        free_port(),
        {**a.env},
        platform.work_dir / "logs" / "notifications-b.log",
    )
    b.env["HTTP_PORT"] = str(b.port)
    b.start()
    try:
        b.wait_ready(90)
        # B takes its share of the group's partitions (the group rebalances).
        await eventually(lambda: assigned(b.url, topics.SCHEDULING_EVENTS), timeout=90)
        await eventually(lambda: assigned(a.url, topics.SCHEDULING_EVENTS), timeout=90)
        clinic = await create_clinic(platform)
        api = apis(platform)["notifications"]
        therapist = clinic.as_("therapist")
        b_before = await processed_plans(b.url, api)

        async with live_inbox(api, therapist, base_url=a.url) as on_a:
            patients = await refer_and_screen_many(platform, clinic, 8)

            def all_streamed() -> bool:
                return {i["patient_id"] for i in on_a.notifications} >= set(patients)

            await eventually(all_streamed, timeout=120)
            assert len(on_a.ids) == len(set(on_a.ids)) == len(patients)  # each once
        # Instance B created some of them (it owns some partitions), and A streamed them.
        assert await processed_plans(b.url, api) > b_before, "B processed nothing"

        # Disconnected: two more notifications; reconnect to B with Last-Event-ID.
        last = on_a.ids[-1]
        missed = await refer_and_screen_many(platform, clinic, 2)

        async def inbox_has_them() -> bool:
            got = await api.request("GET", "/inbox", as_=therapist)
            return {i["patient_id"] for i in got.json()} >= set(missed)

        await eventually(inbox_has_them, timeout=90)
        async with live_inbox(api, therapist, base_url=b.url, last_event_id=last) as on_b:
            await eventually(lambda: len(on_b.notifications) >= len(missed), timeout=30)
            replayed = {i["patient_id"] for i in on_b.notifications}
            # Nothing missed; a replay may repeat what the client had (same ids: it dedupes).
            assert set(missed) <= replayed
            assert replayed <= set(missed) | set(patients)
            assert len(on_b.ids) == len(set(on_b.ids))
    finally:
        b.stop()
