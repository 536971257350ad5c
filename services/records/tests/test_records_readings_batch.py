"""Readings are filed in batches: one transaction a batch, its offsets committed, a
redelivered batch adds nothing, another event type is skipped and a bad record is
dead-lettered without holding up the others."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from faststream.kafka.subscriber.usecase import BatchSubscriber
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from kap_records.adapters.tables import Reading
from kap_records.entrypoints.vitals_batch import ReadingsBatchConsumer, decode
from kap_records.handlers.projection import reading_row, store_readings
from kap_shared.db import create_engine, session_factory
from kap_shared.events import VitalsRecorded, new_id
from kap_shared.events.monitoring import READING_ID_MAX_LENGTH, VitalsRecordedData
from kap_shared.events.topics import MONITORING_VITALS
from kap_shared.messaging.unit_of_work import UnitOfWork
from kap_shared.migrations import migrations_dir, upgrade
from kap_shared.testing import FakeRecord, handle_batch, kafka_headers, rows
from kap_shared.testing_app import app_of, runtime_of

from .conftest import SITE, T0


def reading(minute: int, **metrics: Any) -> VitalsRecorded:
    return VitalsRecorded(
        producer="gw-bed-7",
        site_id=SITE,
        patient_id="pt-1",
        correlation_id="gw-stream",
        data=VitalsRecordedData(
            session_id="s-1",
            reading_id=new_id(),
            recorded_at=T0 + timedelta(minutes=minute),
            **(metrics or {"heart_rate": 80}),
        ),
    )


def record(event: VitalsRecorded, offset: int = 0) -> FakeRecord:
    return FakeRecord(event.to_json(), key=event.key, offset=offset, headers=kafka_headers(event))


@pytest.fixture
def consumer(client: TestClient) -> ReadingsBatchConsumer:
    readings: ReadingsBatchConsumer = app_of(client).state.readings_consumer
    return readings


@pytest.fixture
def published(client: TestClient, monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    """What the consumer publishes to Kafka (its dead letters), captured."""
    sent: list[dict[str, Any]] = []

    async def publish(message: bytes, topic: str, **kwargs: Any) -> None:
        sent.append({"value": message, "topic": topic, **kwargs})

    monkeypatch.setattr(runtime_of(client).broker, "publish", publish)
    return sent


def filed(db: Path) -> list[tuple[Any, ...]]:
    return rows(db, 'SELECT event_id, reading_id, session_id, "values" FROM vitals_readings')


def test_a_batch_is_filed_in_one_go_and_its_redelivery_adds_nothing(
    client: TestClient, consumer: ReadingsBatchConsumer, db: Path
) -> None:
    first, second = reading(0, bp_systolic=150, bp_diastolic=90), reading(5, spo2=97)
    message = handle_batch(client, consumer, [record(first), record(second, 1)])
    assert (message.committed, message.nacked) == ({0: 2}, 0)
    stored = {row[0]: row for row in filed(db)}
    assert set(stored) == {str(first.event_id), str(second.event_id)}
    assert stored[str(first.event_id)][1:3] == (first.data.reading_id, "s-1")
    assert json.loads(stored[str(first.event_id)][3]) == {
        "bp_systolic": 150,
        "bp_diastolic": 90,
        "symptoms": [],
    }

    again = handle_batch(client, consumer, [record(first), record(second, 1)])  # redelivered
    assert (again.committed, again.nacked) == ({0: 2}, 0)
    assert len(filed(db)) == 2
    stats = consumer.stats
    assert (stats.batches, stats.records, stats.stored, stats.duplicates) == (2, 4, 2, 2)


@pytest.mark.parametrize(
    "metrics",
    [
        {"heart_rate": 80},
        {"bp_systolic": 150, "bp_diastolic": 90, "spo2": 97, "symptoms": ["nausea"]},
        {"sedation_moaas": 3, "dissociation": "moderate", "cadss_total": 41},
    ],
)
def test_a_live_batchs_row_is_the_row_of_the_contract_model(metrics: dict[str, Any]) -> None:
    """The live batches decode with the fast decoder (msgspec), a rebuild with the contract
    model: the same record gives the same row, and its values are what the contract model
    itself serializes (unset metrics left out)."""
    event = reading(0, **metrics)
    raw = event.to_json()
    (fast,), dead, skipped = decode([FakeRecord(raw, headers=kafka_headers(event))])
    assert (dead, skipped) == ([], 0)
    assert not isinstance(fast, VitalsRecorded)  # the fast path took it
    model = VitalsRecorded.model_validate_json(raw)

    row = reading_row(fast)
    assert row == reading_row(model)
    assert set(row) == set(Reading.model_fields)
    assert row["values"] == model.data.model_dump(
        mode="json", exclude={"session_id", "reading_id", "recorded_at"}, exclude_none=True
    )


def test_another_event_type_is_skipped_and_a_bad_record_is_dead_lettered_alone(
    client: TestClient,
    consumer: ReadingsBatchConsumer,
    db: Path,
    published: list[dict[str, Any]],
) -> None:
    good = reading(0)
    future = FakeRecord(b'{"event_type": "VitalsStreamPaused"}', offset=1)
    future.headers.append(("event_type", b"VitalsStreamPaused"))
    unannounced = FakeRecord(json.dumps({"event_type": "VitalsStreamPaused"}).encode(), offset=2)
    not_json = FakeRecord(b"{not json", offset=3)
    empty = FakeRecord(None, offset=4)
    message = handle_batch(client, consumer, [record(good), future, unannounced, not_json, empty])

    assert (message.committed, message.nacked) == ({0: 5}, 0)  # past the skipped ones too
    assert [row[0] for row in filed(db)] == [str(good.event_id)]
    letters = {letter["headers"]["x-dlq-original-offset"]: letter for letter in published}
    assert set(letters) == {"3", "4"}
    assert all(letter["topic"] == f"{MONITORING_VITALS}.dlq" for letter in published)
    assert all(letter["headers"]["x-dlq-consumer-group"] == "records" for letter in published)
    assert letters["3"]["headers"]["x-dlq-error-type"] == "JSONDecodeError"
    assert consumer.stats.dead_lettered == 2


def test_the_live_service_reads_readings_with_the_batch_subscriber_only(
    client: TestClient,
) -> None:
    on_vitals = [
        subscriber
        for subscriber in runtime_of(client).broker.subscribers
        if MONITORING_VITALS in getattr(subscriber, "topic_names_for_subscribe", ())
    ]
    assert len(on_vitals) == 1
    assert isinstance(on_vitals[0], BatchSubscriber)


def test_every_consumer_of_records_lets_the_broker_gather_a_batch(client: TestClient) -> None:
    """CONSUMER_LINGER_MS (records: 250 ms): each subscriber's consumer asks the broker to
    hold its fetch (faststream keeps the aiokafka options it will start the consumer
    with in `_connection_args`); the behaviour itself: shared/tests/test_consumer_linger.py."""
    settings = runtime_of(client).settings
    assert settings.consumer_linger_ms > 0
    subscribers = runtime_of(client).broker.subscribers
    assert any(isinstance(subscriber, BatchSubscriber) for subscriber in subscribers)
    for subscriber in subscribers:
        options = subscriber._connection_args  # type: ignore[attr-defined]
        assert options["fetch_max_wait_ms"] == settings.consumer_linger_ms
        assert options["fetch_min_bytes"] > 1


@pytest.fixture
def migrated_url(database_url: str) -> str:
    """The kap_local plugin's new database on each backend, migrated to records' schema."""
    upgrade(database_url, migrations_dir("kap_records"))
    return database_url


@pytest.fixture
async def sessions(migrated_url: str) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    engine = create_engine(migrated_url)
    yield session_factory(engine)
    await engine.dispose()


async def test_a_batch_statement_files_each_reading_once_on_both_databases(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    first, second = reading(0, spo2=95), reading(1, heart_rate=120)

    async def file(*events: VitalsRecorded) -> int:
        async with UnitOfWork(sessions) as uow:
            stored = await store_readings(uow, events)
            await uow.commit()
        return stored

    # the gateway's re-send under a new event id, and its reading_id reused in another
    # session (monitoring rejects that one: MON-READING-1)
    resent = VitalsRecorded(**first.model_dump(exclude={"event_id"}))
    reused = VitalsRecorded(
        **second.model_dump(exclude={"event_id", "data"}),
        data=second.data.model_copy(update={"session_id": "s-2"}),
    )

    assert await file(first, first) == 1  # a repeat inside the batch too
    assert await file(first, second, resent) == 1
    assert await file(reused, resent) == 0
    async with sessions() as session:
        filed_rows = (await session.exec(select(Reading).order_by(col(Reading.recorded_at)))).all()
    assert [(r.event_id, r.session_id, r.values) for r in filed_rows] == [
        (str(first.event_id), "s-1", {"spo2": 95.0, "symptoms": []}),
        (str(second.event_id), "s-1", {"heart_rate": 120, "symptoms": []}),
    ]


async def test_the_longest_reading_id_monitoring_accepts_is_filed_on_both_databases(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    """Records' column is as long as monitoring's: a reading monitoring stored is never
    refused here (on PostgreSQL a 64-character column refused longer ids)."""
    event = reading(0, spo2=96)
    data = event.data.model_copy(update={"reading_id": "r" * READING_ID_MAX_LENGTH})
    longest = event.model_copy(update={"data": data})
    async with UnitOfWork(sessions) as uow:
        assert await store_readings(uow, [longest]) == 1
        await uow.commit()
    async with sessions() as session:
        filed_rows = (await session.exec(select(Reading))).all()
    assert [r.reading_id for r in filed_rows] == [longest.data.reading_id]


def test_the_migration_keeps_one_reading_per_reading_id_on_both_databases(
    database_url: str,
) -> None:
    """Repeats filed before the reading_id became unique are removed, one row each stays
    (the smallest event id), and the database refuses a new repeat."""
    url = database_url
    here = migrations_dir("kap_records")
    upgrade(url, here, "1cb90171e581")  # records' schema before readings were unique
    insert = text(
        "INSERT INTO vitals_readings (event_id, reading_id, patient_id, site_id, session_id, "
        'correlation_id, recorded_at, "values") '
        "VALUES (:event_id, :reading_id, 'pt-1', 'site-a', 's-1', 'c', CURRENT_TIMESTAMP, '{}')"
    )
    filed_before = [("e-3", "r-1"), ("e-1", "r-1"), ("e-2", "r-1"), ("e-4", "r-2")]
    asyncio.run(_execute(url, insert, [{"event_id": e, "reading_id": r} for e, r in filed_before]))

    upgrade(url, here)
    assert asyncio.run(_readings(url)) == [("e-1", "r-1"), ("e-4", "r-2")]
    with pytest.raises(IntegrityError):
        asyncio.run(_execute(url, insert, [{"event_id": "e-5", "reading_id": "r-2"}]))


async def _execute(url: str, statement: Any, values: list[dict[str, str]]) -> None:
    engine = create_engine(url)
    try:
        async with engine.begin() as connection:
            await connection.execute(statement, values)
    finally:
        await engine.dispose()


async def _readings(url: str) -> list[tuple[str, str]]:
    engine = create_engine(url)
    try:
        async with engine.connect() as connection:
            result = await connection.execute(
                text("SELECT event_id, reading_id FROM vitals_readings ORDER BY event_id")
            )
            return [(row[0], row[1]) for row in result]
    finally:
        await engine.dispose()
