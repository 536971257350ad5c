"""kap-dlq against a real broker: list, inspect and replay dead letters written
with the headers the dead-letter middleware writes. Unique topics per test."""

from __future__ import annotations

import asyncio
import json
import sqlite3
import time
import uuid
from collections.abc import Callable
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from kap_shared.messaging import broker
from kap_shared.ops import dlq
from kap_shared.ops.kafka import partitions_of
from kap_shared.settings import KafkaSettings

from .examples import example

pytestmark = pytest.mark.kafka

Headers = list[tuple[str, bytes]]


def original_headers(event_type: str) -> Headers:
    return [
        ("event_type", event_type.encode()),
        ("content-type", b"application/json"),
        ("traceparent", b"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"),
    ]


def dead_letter_headers(
    event_type: str, *, topic: str, group: str, error: BaseException, offset: int
) -> Headers:
    """The original headers and what the dead-letter middleware adds to them."""
    added = broker.dead_letter_headers(
        error, consumer_group=group, topic=topic, partition=0, offset=offset, attempts=3
    )
    return [*original_headers(event_type), *((k, v.encode()) for k, v in added.items())]


async def create_topics(bootstrap: str, *names: str, partitions: int = 3) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.create_topics(
            [NewTopic(n, num_partitions=partitions, replication_factor=1) for n in names]
        )
    finally:
        await admin.close()


async def produce(bootstrap: str, topic: str, records: list[tuple[bytes, bytes, Headers]]) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, enable_idempotence=True)
    await producer.start()
    try:
        for key, value, headers in records:
            await producer.send_and_wait(topic, value, key=key, headers=headers)
    finally:
        await producer.stop()


async def consume_all(bootstrap: str, topic: str) -> list[Any]:
    """Every record on `topic` when called: each partition is read up to the end offset
    it had then. The writes under test are acknowledged before this is called, so the
    end offsets count all of them and no wait is needed to show that nothing else came."""
    ids = await partitions_of(KafkaSettings(bootstrap_servers=bootstrap), topic)
    partitions = [TopicPartition(topic, p) for p in ids or ()]
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, auto_offset_reset="earliest")
    await consumer.start()
    try:
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        ends = await consumer.end_offsets(partitions)
        records: list[Any] = []
        deadline = time.monotonic() + 20
        while [tp for tp in partitions if await consumer.position(tp) < ends[tp]]:
            assert time.monotonic() < deadline, f"{topic} not read to its end offsets {ends}"
            for batch in (await consumer.getmany(timeout_ms=500)).values():
                records.extend(batch)
        return records
    finally:
        await consumer.stop()


@pytest.fixture
def topics(kafka_bootstrap: str) -> tuple[str, str]:
    topic = f"kap.test-{uuid.uuid4().hex[:10]}.events.v1"
    asyncio.run(create_topics(kafka_bootstrap, topic, f"{topic}.dlq"))
    return topic, f"{topic}.dlq"


@pytest.fixture
def settings(kafka_bootstrap: str) -> KafkaSettings:
    return KafkaSettings(bootstrap_servers=kafka_bootstrap)


@pytest.fixture
def seeded(kafka_bootstrap: str, topics: tuple[str, str]) -> list[tuple[bytes, bytes]]:
    """Two dead letters of the test topic: one of group `notifications` (RuntimeError), one
    of `monitoring`; their keys and values."""
    topic, dlq_topic = topics
    letters = [
        ("pt-dlq-1", "TreatmentPlanCreated", "notifications", RuntimeError("handler failed"), 41),
        ("pt-dlq-2", "SessionScheduled", "monitoring", sqlite3.OperationalError("locked"), 42),
    ]
    records = [
        (
            patient.encode(),
            json.dumps(
                example(event_type, event_id=str(uuid.uuid4()), patient_id=patient)
            ).encode(),
            dead_letter_headers(event_type, topic=topic, group=group, error=error, offset=offset),
        )
        for patient, event_type, group, error, offset in letters
    ]
    asyncio.run(produce(kafka_bootstrap, dlq_topic, records))
    return [(key, value) for key, value, _ in records]


@pytest.fixture
def kap_dlq(kafka_bootstrap: str) -> Callable[..., int]:
    """kap-dlq's command line against the test broker: `kap_dlq("list", topic)`, its exit code."""
    return lambda *args: dlq.main(["--bootstrap-servers", kafka_bootstrap, *args])


@pytest.mark.usefixtures("seeded")
def test_list_shows_provenance_of_each_dead_letter(
    topics: tuple[str, str], settings: KafkaSettings
) -> None:
    topic, dlq_topic = topics
    letters = asyncio.run(dlq.read_dead_letters(settings, topic))

    assert len(letters) == 2
    by_group = {d.consumer_group: d for d in letters}
    plan = by_group["notifications"]
    assert plan.topic == dlq_topic
    assert plan.error_type == "RuntimeError"
    assert plan.original_topic == topic
    assert (plan.original_partition, plan.original_offset) == (0, 41)
    assert plan.key == b"pt-dlq-1"
    assert 0 <= plan.age_seconds() < 120
    table = dlq.render_table(letters)
    assert "notifications" in table
    assert "RuntimeError" in table
    assert f"{topic}:0:41" in table

    only = asyncio.run(
        dlq.read_dead_letters(settings, dlq_topic, selection=dlq.Selection(error_type="Nope"))
    )
    assert only == []


@pytest.mark.usefixtures("seeded")
def test_cli_list_and_inspect(
    topics: tuple[str, str], kap_dlq: Callable[..., int], capsys: pytest.CaptureFixture[str]
) -> None:
    topic, dlq_topic = topics
    assert kap_dlq("list", topic, "--json") == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert {r["consumer_group"] for r in rows} == {"notifications", "monitoring"}
    row = next(r for r in rows if r["consumer_group"] == "monitoring")
    assert row["original_topic"] == topic
    assert row["key"] == "pt-dlq-2"

    partition, offset = row["partition"], row["offset"]
    where = ["--partition", str(partition), "--offset", str(offset)]
    assert kap_dlq("inspect", dlq_topic, *where) == 0
    out = capsys.readouterr().out
    assert f"{dlq_topic}:{partition}:{offset}" in out
    assert "x-dlq-consumer-group: monitoring" in out
    assert '"event_type": "SessionScheduled"' in out  # pretty payload

    assert kap_dlq("inspect", topic, "--partition", "0", "--offset", "999") == 1
    assert kap_dlq("list", "kap.no-such-topic.v1") == 1


def test_replay_republishes_with_same_key_and_value_and_clean_headers(
    kafka_bootstrap: str,
    topics: tuple[str, str],
    seeded: list[tuple[bytes, bytes]],
    kap_dlq: Callable[..., int],
    capsys: pytest.CaptureFixture[str],
) -> None:
    topic, dlq_topic = topics

    # dry run publishes nothing
    assert kap_dlq("replay", topic, "--dry-run") == 0
    assert "would replay 2 dead letter(s)" in capsys.readouterr().out

    # only the notifications group's dead letter
    assert kap_dlq("replay", topic, "--group", "notifications") == 0
    assert "replayed 1 dead letter(s)" in capsys.readouterr().out

    arrived = asyncio.run(consume_all(kafka_bootstrap, topic))
    assert len(arrived) == 1
    record = arrived[0]
    assert (record.key, record.value) == seeded[0]
    headers = dict(record.headers)
    assert not any(name.startswith("x-dlq-") and name != dlq.REPLAYED_FROM for name in headers)
    assert headers["event_type"] == b"TreatmentPlanCreated"
    assert headers["traceparent"].startswith(b"00-4bf92f")
    source = headers[dlq.REPLAYED_FROM].decode()
    assert source.startswith(f"{dlq_topic}:")

    # the dead letter stays on the .dlq topic (the tool commits nothing)
    settings = KafkaSettings(bootstrap_servers=kafka_bootstrap)
    assert len(asyncio.run(dlq.read_dead_letters(settings, topic))) == 2


def test_replay_by_offset_range_keeps_order(
    kafka_bootstrap: str, topics: tuple[str, str], settings: KafkaSettings
) -> None:
    topic, dlq_topic = topics
    # one patient, three dead letters: same key -> same .dlq partition, in order
    values = [
        json.dumps(example("SessionCheckedIn", event_id=str(uuid.uuid4()))).encode()
        for _ in range(3)
    ]
    headers = dead_letter_headers(
        "SessionCheckedIn", topic=topic, group="monitoring", error=RuntimeError("boom"), offset=7
    )
    asyncio.run(produce(kafka_bootstrap, dlq_topic, [(b"pt-order", v, headers) for v in values]))
    letters = asyncio.run(dlq.read_dead_letters(settings, topic))
    partition = letters[0].partition
    first = letters[0].offset

    result = asyncio.run(
        dlq.replay(
            settings,
            topic,
            selection=dlq.Selection(
                partition=partition, from_offset=first + 1, to_offset=first + 2
            ),
        )
    )

    assert [d.offset for d, *_ in result.replayed] == [first + 1, first + 2]
    arrived = asyncio.run(consume_all(kafka_bootstrap, topic))
    assert [r.value for r in sorted(arrived, key=lambda r: r.offset)] == values[1:]
    assert {r.key for r in arrived} == {b"pt-order"}
