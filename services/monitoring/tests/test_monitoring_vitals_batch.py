"""The kap.monitoring.vitals.v1 batch consumer: one transaction per batch, repeats
without a second effect, bad records dead-lettered one by one (never poisoning the
batch), offsets committed only after the database commit and the dead letters."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.exc import DBAPIError, OperationalError

from kap_monitoring.domain.vitals import micros
from kap_monitoring.entrypoints.vitals_batch import VitalsBatchConsumer, decode
from kap_monitoring.handlers.vitals import VitalsIngest
from kap_shared.events import VitalsRecorded
from kap_shared.events.monitoring import VitalsRecordedData
from kap_shared.events.topics import MONITORING_VITALS
from kap_shared.messaging.batch_consumer import DeadLetter
from kap_shared.messaging.errors import PermanentError
from kap_shared.testing import FakeBatchMessage as FakeMessage
from kap_shared.testing import FakeRecord as Record
from kap_shared.testing import handle_batch, rows

from .conftest import SITE, Monitoring, now

Outbox = Callable[..., list[dict[str, Any]]]


def reading(
    reading_id: str,
    *,
    session_id: str = "ses-1",
    patient_id: str = "pt-1",
    site_id: str = SITE,
    at: datetime | None = None,
    **metrics: Any,
) -> VitalsRecorded:
    return VitalsRecorded(
        producer="gw-bed-7",
        site_id=site_id,
        patient_id=patient_id,
        correlation_id="gw-stream",
        data=VitalsRecordedData(
            session_id=session_id,
            reading_id=reading_id,
            recorded_at=at or now(),
            **(metrics or {"heart_rate": 80}),
        ),
    )


def records(*events: VitalsRecorded | bytes | None) -> list[Record]:
    out = []
    for offset, event in enumerate(events):
        value = event.to_json() if isinstance(event, VitalsRecorded) else event
        key = event.key if isinstance(event, VitalsRecorded) else b"pt-1"
        out.append(Record(value, key=key, offset=offset))
    return out


@pytest.fixture
def consumer(client: TestClient) -> VitalsBatchConsumer:
    vitals: VitalsBatchConsumer = client.app.state.vitals_consumer  # type: ignore[attr-defined]
    return vitals


@pytest.fixture
def process(client: TestClient, consumer: VitalsBatchConsumer) -> Callable[..., Any]:
    def run(batch: list[Record]) -> Any:
        assert client.portal is not None
        return client.portal.call(consumer.process, batch)

    return run


@pytest.fixture
def published(client: TestClient, monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    """What the consumer publishes to Kafka (its dead letters), captured."""
    sent: list[dict[str, Any]] = []
    broker = client.app.state.runtime.broker  # type: ignore[attr-defined]

    async def publish(message: bytes, topic: str, **kwargs: Any) -> None:
        sent.append({"value": message, "topic": topic, **kwargs})

    monkeypatch.setattr(broker, "publish", publish)
    return sent


@pytest.fixture
def handle(client: TestClient, consumer: VitalsBatchConsumer) -> Callable[..., FakeMessage]:
    def run(batch: list[Record]) -> FakeMessage:
        return handle_batch(client, consumer, batch)

    return run


def readings(db: Path) -> list[tuple[Any, ...]]:
    return rows(db, "SELECT reading_id, session_id, source FROM readings ORDER BY reading_id")


# -- decoding -------------------------------------------------------------------------------


def test_each_record_is_validated_on_its_own() -> None:
    good = reading("r-1")
    missing = json.loads(reading("r-2").to_json())
    del missing["data"]["reading_id"]
    wrong_type = json.loads(reading("r-3").to_json())
    wrong_type["event_type"] = "DoseAdministered"
    no_metric = json.loads(reading("r-4").to_json())
    no_metric["data"].update(heart_rate=None)
    items, dead, skipped, _ = decode(
        records(
            good,
            b"\x00not json",
            json.dumps(missing).encode(),
            json.dumps(wrong_type).encode(),
            json.dumps(no_metric).encode(),
            None,
        )
    )
    assert [i.reading.reading_id for i in items] == ["r-1"]
    assert items[0].event_id == str(good.event_id)
    assert [type(d.error).__name__ for d in dead] == [
        "JSONDecodeError",
        "ValidationError",
        "ValidationError",
        "PermanentError",
    ]
    # Another event type (no header here: found in the envelope) is skipped, not DLQ'd.
    assert [json.loads(r.value or b"")["event_type"] for r in skipped] == ["DoseAdministered"]
    assert "data.reading_id" in str(dead[1].error)


def test_each_reading_keeps_its_own_event_id_time_and_position() -> None:
    """The event ids are converted for the whole batch at once (and the times inline):
    each reading must still carry its own, with bad and foreign records in between."""
    base = now()
    good = [reading(f"r-{n}", at=base + timedelta(microseconds=n * 999_001)) for n in range(5)]
    foreign = json.loads(reading("x").to_json())
    foreign["event_type"] = "DoseAdministered"
    batch = records(
        good[0], b"{}", good[1], good[2], json.dumps(foreign).encode(), None, good[3], good[4]
    )
    batch[2].headers.append(("traceparent", b"00-trace-of-r-1"))
    items, dead, skipped, _ = decode(batch)
    assert (len(dead), len(skipped)) == (2, 1)
    assert [(i.reading.reading_id, i.ref) for i in items] == [
        ("r-0", 0),
        ("r-1", 2),
        ("r-2", 3),
        ("r-3", 6),
        ("r-4", 7),
    ]
    assert [i.event_id for i in items] == [str(e.event_id) for e in good]
    assert [i.reading.t for i in items] == [micros(e.data.recorded_at) for e in good]
    assert [i.recorded_at for i in items] == [e.data.recorded_at for e in good]
    assert [i.traceparent for i in items] == [None, "00-trace-of-r-1", None, None, None]


def test_a_record_only_the_lax_contract_accepts_is_still_a_reading() -> None:
    """The fast decoder is strict; what it leaves, the contract model decides as before
    (here a number sent as a string), so no valid reading is dead-lettered for it."""
    lax = json.loads(reading("r-1").to_json())
    lax["data"]["heart_rate"] = "81"
    strict = reading("r-2", heart_rate=82)
    items, dead, skipped, _ = decode(records(json.dumps(lax).encode(), strict))
    assert [(i.reading.reading_id, i.reading.heart_rate) for i in items] == [
        ("r-1", 81),
        ("r-2", 82),
    ]
    assert (dead, skipped) == ([], [])


def test_a_future_event_type_on_the_vitals_topic_is_skipped_not_dead_lettered() -> None:
    """Tolerant reader: the `event_type` header decides before any validation."""
    future = Record(
        b'{"event_type": "VitalsCalibrated", "data": {"unknown": 1}}',
        headers=[("event_type", b"VitalsCalibrated")],
    )
    good = records(reading("r-9"))[0]
    items, dead, skipped, _ = decode([future, good])
    assert [i.reading.reading_id for i in items] == ["r-9"]
    assert dead == []
    assert skipped == [future]


# -- one transaction per batch --------------------------------------------------------------


def test_a_batch_is_stored_once_and_a_redelivery_has_no_second_effect(
    process: Callable[..., Any], open_session: Callable[..., str], db: Path, outbox: Outbox
) -> None:
    open_session("ses-1")
    open_session("ses-2", patient_id="pt-2")
    start = now() - timedelta(minutes=5)
    batch = records(
        *(reading(f"a-{i}", at=start + timedelta(seconds=15 * i), spo2=85 + i) for i in range(4)),
        *(
            reading(f"b-{i}", session_id="ses-2", patient_id="pt-2", heart_rate=70 + i)
            for i in range(3)
        ),
        reading("a-0", spo2=85),  # the same reading again in the same batch
    )
    outcome = process(batch)
    assert (outcome.stored, outcome.duplicates, outcome.dead) == (7, 1, [])
    assert [r[0] for r in readings(db)] == ["a-0", "a-1", "a-2", "a-3", "b-0", "b-1", "b-2"]
    assert {r[2] for r in readings(db)} == {"device"}
    [alert] = outbox("VitalsAlert")  # SpO2 85: one alert, not four
    assert alert["causation_id"] == json.loads(batch[0].value or b"")["event_id"]

    again = process(batch)

    assert (again.stored, again.duplicates, again.dead) == (0, 8, [])
    assert len(readings(db)) == 7
    assert len(outbox("VitalsAlert")) == 1


def test_the_topic_echo_of_an_http_reading_is_not_evaluated_twice(
    process: Callable[..., Any], mon: Monitoring, dosed_session: Callable[..., str], outbox: Outbox
) -> None:
    dosed_session()
    mon.ok_vitals(reading_id="http-1", spo2=85)
    [echo] = outbox("VitalsRecorded")
    outcome = process([Record(json.dumps(echo).encode())])
    assert (outcome.stored, outcome.duplicates) == (0, 1)
    assert len(outbox("VitalsAlert")) == 1


def outbox_record(db: Path, event_type: str = "VitalsRecorded") -> Record:
    """The last outbox row of `event_type` as the relay sends it (value and headers)."""
    [(payload, headers)] = rows(
        db,
        "SELECT payload, headers FROM outbox_messages "  # noqa: S608 - a test's own value
        f"WHERE event_type = '{event_type}' ORDER BY seq DESC LIMIT 1",
    )
    return Record(
        payload.encode(),
        headers=[(name, value.encode()) for name, value in json.loads(headers).items()],
    )


def test_monitorings_own_reading_is_settled_from_its_header_without_decoding() -> None:
    """The outbox's `producer` header names this service: a repeat, never decoded (a
    value that would not decode proves it); any other producer's record is decoded."""
    own = Record(b"\x00not decoded", headers=[("producer", b"monitoring")])
    gateway = Record(reading("r-1").to_json(), headers=[("producer", b"gw-bed-7")])
    items, dead, skipped, echoes = decode([own, gateway], "monitoring")
    assert [i.reading.reading_id for i in items] == ["r-1"]
    assert (dead, skipped, echoes) == ([], [], 1)
    # Without the service's name, the header means nothing: the value is decoded.
    items, dead, skipped, echoes = decode([own, gateway])
    assert [type(d.error).__name__ for d in dead] == ["JSONDecodeError"]
    assert echoes == 0


def test_the_echo_with_its_outbox_headers_reads_nothing_and_a_gateway_repeat_is_still_deduped(
    process: Callable[..., Any],
    mon: Monitoring,
    dosed_session: Callable[..., str],
    outbox: Outbox,
    consumer: VitalsBatchConsumer,
    db: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    dosed_session()
    mon.ok_vitals(reading_id="http-2", spo2=85)
    echo = outbox_record(db)
    applied: list[int] = []
    real_apply = consumer.ingest.apply

    async def counting_apply(uow: Any, items: Any) -> Any:
        applied.append(len(items))
        return await real_apply(uow, items)

    monkeypatch.setattr(consumer.ingest, "apply", counting_apply)
    outcome = process([echo])
    assert (outcome.stored, outcome.duplicates, applied) == (0, 1, [])
    # A gateway's reading with the HTTP reading's id: decoded, deduplicated by reading_id.
    [sent] = outbox("VitalsRecorded")
    retry = reading("http-2", at=datetime.fromisoformat(sent["data"]["recorded_at"]), spo2=85)
    outcome = process(records(retry))
    assert (outcome.stored, outcome.duplicates, applied) == (0, 1, [1])
    assert len(outbox("VitalsAlert")) == 1
    assert [r[0] for r in readings(db)] == ["http-2"]


def test_readings_in_one_batch_are_evaluated_in_recorded_at_order(
    process: Callable[..., Any], open_session: Callable[..., str], outbox: Outbox
) -> None:
    open_session()
    start = now() - timedelta(minutes=10)
    shuffled = [4, 0, 5, 2, 1, 3]  # minutes after start, as they arrive
    process(
        records(
            *(reading(f"h-{m}", at=start + timedelta(minutes=m), heart_rate=130) for m in shuffled)
        )
    )
    [alert] = outbox("VitalsAlert")
    assert alert["data"]["rule_id"] == "KET-MON-HR"


def test_a_late_batch_is_evaluated_by_recorded_at(
    process: Callable[..., Any], open_session: Callable[..., str], outbox: Outbox
) -> None:
    open_session()
    start = now() - timedelta(minutes=10)
    process(
        records(
            *(
                reading(f"h-{m}", at=start + timedelta(minutes=m), heart_rate=130)
                for m in (0, 1, 2, 3, 4)
            )
        )
    )
    process(records(reading("h-9", at=start + timedelta(minutes=9), heart_rate=90)))
    assert outbox("VitalsAlert") == []
    process(records(reading("h-5", at=start + timedelta(minutes=5), heart_rate=131)))  # late
    assert [e["event_type"] for e in outbox("VitalsAlert", "VitalsAlertResolved")] == [
        "VitalsAlert",
        "VitalsAlertResolved",
    ]


def test_bad_records_are_set_aside_and_the_rest_is_stored(
    process: Callable[..., Any],
    open_session: Callable[..., str],
    mon: Monitoring,
    db: Path,
) -> None:
    open_session("ses-1")
    open_session("ses-closed", patient_id="pt-3")
    mon.dose(
        "ses-closed",
        route="im",
        agent="ketamine",
        dose_mg=30,
        administered_at=(now() - timedelta(hours=2)).isoformat(),
    )
    mon.ready("ses-closed")
    assert mon.discharge("ses-closed").status_code == 200
    open_session("ses-booked", patient_id="pt-4", check_in=False)
    batch = records(
        reading("ok-1"),
        b"garbage",
        reading("x-unknown", session_id="ses-nope"),
        reading("x-closed", session_id="ses-closed", patient_id="pt-3"),
        reading("x-booked", session_id="ses-booked", patient_id="pt-4"),
        reading("x-patient", patient_id="pt-someone-else"),
        reading("ok-2"),
    )
    outcome = process(batch)
    assert outcome.stored == 2
    stored = [r[0] for r in readings(db) if r[2] == "device"]
    assert stored == ["ok-1", "ok-2"]
    by_offset = {d.record.offset: d.error for d in outcome.dead}
    assert sorted(by_offset) == [1, 2, 3, 4, 5]
    assert "not known" in str(by_offset[2])
    assert "closed" in str(by_offset[3]) or "discharged" in str(by_offset[3])
    assert "not checked in" in str(by_offset[4])
    assert "another patient" in str(by_offset[5])
    assert all(isinstance(by_offset[o], PermanentError) for o in (2, 3, 4, 5))


# -- the subscription: dead letters, then the offset commit ---------------------------------


def test_the_batchs_offset_commit_is_counted_on_metrics(
    client: TestClient, handle: Callable[..., FakeMessage], open_session: Callable[..., str]
) -> None:
    open_session()
    handle(records(reading("ok-1")))
    sample = (
        'kap_consumer_offset_commits_total{outcome="committed",topic="kap.monitoring.vitals.v1"}'
    )
    assert f"{sample} 1.0" in client.get("/metrics").text.splitlines()


def test_handle_dead_letters_with_provenance_then_commits(
    handle: Callable[..., FakeMessage],
    open_session: Callable[..., str],
    published: list[dict[str, Any]],
    consumer: VitalsBatchConsumer,
) -> None:
    open_session()
    batch = records(reading("ok-1"), reading("x-1", session_id="ses-nope"))
    batch[1].headers.append(("traceparent", b"00-" + b"a" * 32 + b"-" + b"b" * 16 + b"-01"))

    message = handle(batch)

    assert (message.committed, message.nacked) == ({0: 2}, 0)  # past both records
    [letter] = published
    assert letter["topic"] == "kap.monitoring.vitals.v1.dlq"
    assert letter["value"] == batch[1].value
    assert letter["key"] == b"pt-1"
    headers = letter["headers"]
    assert headers["x-dlq-consumer-group"] == "monitoring-vitals"
    assert headers["x-dlq-error-type"] == "PermanentError"
    assert "ses-nope" in headers["x-dlq-error"]
    assert headers["x-dlq-original-topic"] == MONITORING_VITALS
    assert (headers["x-dlq-original-partition"], headers["x-dlq-original-offset"]) == ("0", "1")
    assert headers["traceparent"].startswith("00-aaaa")  # the original headers travel along
    stats = consumer.stats
    assert (stats.batches, stats.records, stats.stored, stats.dead_lettered) == (1, 2, 1, 1)


@dataclass
class Failing:
    """A consumer with ses-1 open, its dead letters captured and no back-off between
    its retries: for the failure paths."""

    handle: Callable[..., FakeMessage]
    published: list[dict[str, Any]]
    consumer: VitalsBatchConsumer
    db: Path


@pytest.fixture
def failing(
    handle: Callable[..., FakeMessage],
    open_session: Callable[..., str],
    published: list[dict[str, Any]],
    consumer: VitalsBatchConsumer,
    db: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> Failing:
    open_session()
    monkeypatch.setattr(consumer.settings, "vitals_batch_retry_backoff_seconds", 0)
    return Failing(handle, published, consumer, db)


def test_a_database_outage_rewinds_the_batch_and_dead_letters_nothing(
    failing: Failing, monkeypatch: pytest.MonkeyPatch
) -> None:

    async def down(*args: Any) -> None:
        raise OperationalError("SELECT 1", {}, Exception("database is unavailable"))

    monkeypatch.setattr(failing.consumer.ingest, "apply", down)
    message = failing.handle(records(reading("ok-1")))
    assert (message.committed, message.nacked) == ({}, 1)
    assert failing.published == []
    assert readings(failing.db) == []


class DeadlockDetected(Exception):
    """What SQLAlchemy's asyncpg adapter raises for PostgreSQL's 40P01."""

    sqlstate = "40P01"


def test_a_deadlock_is_retried_as_a_whole_batch_not_record_by_record(
    failing: Failing, monkeypatch: pytest.MonkeyPatch
) -> None:
    """PostgreSQL breaks a deadlock (a timer firing for one of the batch's sessions) by
    aborting one transaction: the batch is tried again as a whole and stored once."""
    real = VitalsIngest.apply
    calls: list[int] = []

    async def deadlocked_once(self: VitalsIngest, uow: Any, items: Any) -> Any:
        calls.append(len(items))
        if len(calls) == 1:
            raise DBAPIError("UPDATE monitored_sessions", {}, DeadlockDetected("deadlock"))
        return await real(self, uow, items)

    monkeypatch.setattr(VitalsIngest, "apply", deadlocked_once)
    message = failing.handle(records(reading("ok-1"), reading("ok-2")))
    assert message.committed == {0: 2}
    assert calls == [2, 2]  # the whole batch twice, never one record at a time
    assert sorted(r[0] for r in readings(failing.db)) == ["ok-1", "ok-2"]
    assert failing.published == []


def test_an_unexpected_error_isolates_the_failing_record(
    failing: Failing, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = VitalsIngest.apply

    async def flaky(self: VitalsIngest, uow: Any, items: Any) -> Any:
        if any(i.reading.reading_id == "poison" for i in items):
            raise RuntimeError("bug triggered by this reading")
        return await real(self, uow, items)

    monkeypatch.setattr(VitalsIngest, "apply", flaky)
    message = failing.handle(records(reading("ok-1"), reading("poison"), reading("ok-2")))
    assert message.committed == {0: 3}
    assert [r[0] for r in readings(failing.db)] == ["ok-1", "ok-2"]
    [letter] = failing.published
    assert letter["headers"]["x-dlq-error-type"] == "RuntimeError"
    assert letter["headers"]["x-dlq-original-offset"] == "1"


def test_if_a_dead_letter_cannot_be_published_nothing_is_committed(
    client: TestClient,
    handle: Callable[..., FakeMessage],
    open_session: Callable[..., str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    open_session()

    async def refuse(*args: Any, **kwargs: Any) -> None:
        raise ConnectionError("broker unavailable")

    monkeypatch.setattr(client.app.state.runtime.broker, "publish", refuse)  # type: ignore[attr-defined]
    message = handle(records(reading("ok-1"), b"garbage"))
    assert (message.committed, message.nacked) == ({}, 1)


def test_dead_letter_keeps_the_original_bytes(
    client: TestClient, consumer: VitalsBatchConsumer, published: list[dict[str, Any]]
) -> None:
    record = Record(b"\xff\xfe not utf-8", key=None)
    assert client.portal is not None
    client.portal.call(consumer.dead_letter, [DeadLetter(record, ValueError("bad"))])
    assert published[0]["value"] == b"\xff\xfe not utf-8"
    assert published[0]["key"] is None
