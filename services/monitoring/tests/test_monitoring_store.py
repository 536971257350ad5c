"""The vitals hot path's plain-SQL statements (adapters.store) on SQLite and on
PostgreSQL: what they write reads back through the ORM exactly as if the ORM had
written it, and the ingest use case behaves the same on both databases."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import event, insert, text
from sqlalchemy import select as sa_select
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from kap_monitoring.adapters import store
from kap_monitoring.adapters.tables import readings_table
from kap_monitoring.domain.rules import MonitoringRules
from kap_monitoring.domain.vitals import Reading, micros
from kap_monitoring.entrypoints.stream import HANDLERS
from kap_monitoring.handlers.observations import (
    OVERDUE,
    REMINDER,
    overdue_key,
    reminder_key,
    timer_handlers,
)
from kap_monitoring.handlers.vitals import Incoming, VitalsIngest
from kap_shared.db import create_engine, is_postgres, session_factory
from kap_shared.events.monitoring import VITAL_METRICS, VitalsRecordedData
from kap_shared.messaging import timers
from kap_shared.messaging.consumer import EventConsumer
from kap_shared.messaging.timers import ScheduledJob, TimerWorker
from kap_shared.messaging.unit_of_work import UnitOfWork
from kap_shared.migrations import migrations_dir, upgrade
from kap_shared.rules import SiteRules

from .conftest import PATIENT, SITE, checked_in, scheduled


@pytest.fixture
def database_url(database_url: str) -> str:
    """The kap_local plugin's new database on each backend, migrated to monitoring's schema."""
    upgrade(database_url, migrations_dir("kap_monitoring"))
    return database_url


@pytest.fixture
async def sessions(database_url: str) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    engine = create_engine(database_url)
    factory = session_factory(engine)
    consumer = EventConsumer(group_id="monitoring", sessions=factory, handlers=HANDLERS)
    booking = scheduled("ses-1")
    await consumer.handle(booking)
    await consumer.handle(checked_in(booking))
    yield factory
    await engine.dispose()


def incoming(reading_id: str, at: datetime, **values: float) -> Incoming:
    reading = Reading(reading_id, micros(at), **values)  # type: ignore[arg-type]
    return Incoming(reading, at, "ses-1", "device", "00000000-0000-0000-0000-000000000001")


NOW = datetime.now(UTC).replace(microsecond=0)


async def test_plain_sql_rows_read_back_like_sqlalchemy_rows(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    paris = timezone(timedelta(hours=2))
    at = (NOW - timedelta(minutes=3)).astimezone(paris)  # a non-UTC offset is stored as UTC
    async with sessions() as session, session.begin():
        await store.insert_readings(session, [incoming("r-1", at, heart_rate=80, spo2=97.5)], NOW)
        await session.exec(
            insert(readings_table).values(
                reading_id="r-sqlalchemy",
                session_id="ses-1",
                recorded_at=at,
                heart_rate=81,
                symptoms=[],
                source="http",
                received_at=NOW,
            )
        )
    async with sessions() as session:
        result = await session.exec(sa_select(readings_table))  # type: ignore[call-overload]
        rows = {r.reading_id: r for r in result}
        assert rows["r-1"].recorded_at == at
        assert rows["r-1"].recorded_at.tzinfo is not None
        assert (rows["r-1"].heart_rate, rows["r-1"].spo2, rows["r-1"].symptoms) == (80, 97.5, [])
        raw = await session.exec(  # type: ignore[call-overload]
            text("SELECT reading_id, recorded_at FROM readings ORDER BY reading_id")
        )
        stored = dict(raw.all())
        assert stored["r-1"] == stored["r-sqlalchemy"]  # byte for byte SQLAlchemy's format
        assert await store.existing_readings(session, ["r-1", "r-x"]) == {"r-1": "ses-1"}


async def test_stored_readings_are_found_by_id_whatever_its_characters_and_the_batchs_size(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    """The SQLite check passes the batch's ids as one JSON array: ids that JSON escapes
    or that look like numbers must come back as themselves, and a batch bigger than
    any chunk must be checked whole."""
    odd = ['r "quoted"', "r\\back\\slash", "ré-ünï-読", "r,comma", "r'apos", "007", "1e3", ""]
    many = [f"r-{n:05d}" for n in range(2_500)]
    stored = [*odd, *many[::2]]
    async with sessions() as session, session.begin():
        await store.insert_readings(session, [incoming(r, NOW, heart_rate=80) for r in stored], NOW)
    asked = [*odd, "r-absent", "07", "1000", *many]
    async with sessions() as session:
        found = await store.existing_readings(session, asked)
    assert found == dict.fromkeys(stored, "ses-1")


async def test_the_stored_readings_check_is_planned_for_the_table_as_it_is_now(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    """Batch after batch on a new (empty) readings table, the check finds ids through the
    primary key: on PostgreSQL never with a generic plan, which would stay a sequential
    scan while the table grows (kap_shared.db.planned_for_each_execution; bench/README.md
    round 15); SQLite's one statement looks each id up in the key, whatever the table."""
    ids = [f"r-{n}" for n in range(20)]
    async with sessions() as session:
        for _ in range(10):
            await store.existing_readings(session, ids)
            await session.commit()
        if is_postgres(session):
            plans = await (await session.connection()).execute(
                text(
                    "SELECT generic_plans, custom_plans FROM pg_prepared_statements"
                    " WHERE statement LIKE 'SELECT reading_id, session_id FROM readings%'"
                )
            )
            assert plans.all() == [(0, 10)]
        else:
            connection = await session.connection()
            plan = await connection.exec_driver_sql(
                f"EXPLAIN QUERY PLAN {store._SQLITE_EXISTING}", ("[]",)
            )
            details = [row[-1] for row in plan]
            assert any(d.startswith("SEARCH r USING") for d in details), details


async def test_ingest_and_session_state_on_both_databases(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    ingest = VitalsIngest(SiteRules(MonitoringRules()))
    batch = [incoming(f"s-{s}", NOW - timedelta(seconds=90 - s), spo2=91) for s in (0, 30, 60)]
    async with UnitOfWork(sessions) as uow:
        result = await ingest.apply(uow, batch)
        await uow.commit()
    assert [a.rule_id for a in result.raised] == ["KET-MON-SPO2"]
    async with UnitOfWork(sessions) as uow:
        again = await ingest.apply(
            uow, [*batch, incoming("late", NOW - timedelta(minutes=5), spo2=97)]
        )
        await uow.commit()
    assert (len(again.duplicates), len(again.stored), again.raised) == (3, 1, [])
    async with sessions() as session:
        [row] = (await store.lock_and_load_sessions(session, ["ses-1", "ses-unknown"])).values()
        assert (row.status, row.predose_decision_pending, row.bp_check_done) == (
            "checked_in",
            False,
            False,
        )
        assert row.rule_state["latest"]["spo2"] == 91  # the late reading is older
        assert [a.rule_id for a in await store.open_alerts(session, ["ses-1"])] == ["KET-MON-SPO2"]
        count = await session.exec(  # type: ignore[call-overload]
            text("SELECT reading_count FROM monitored_sessions")
        )
        assert count.scalar_one() == 4


async def _reading_ids(sessions: async_sessionmaker[AsyncSession]) -> list[str]:
    async with sessions() as session:
        found = await session.exec(  # type: ignore[call-overload]
            text("SELECT reading_id FROM readings ORDER BY reading_id")
        )
        return list(found.scalars())


async def _reading_count(sessions: async_sessionmaker[AsyncSession]) -> int:
    async with sessions() as session:
        found = await session.exec(  # type: ignore[call-overload]
            text("SELECT reading_count FROM monitored_sessions WHERE session_id = 'ses-1'")
        )
        count: int = found.scalar_one()
        return count


async def test_MON_READING_1_repeats_are_settled_by_the_insert_and_only_new_readings_count(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    """A device's retry stores nothing and is a duplicate; a stored id under another
    (here unknown) session is refused as MON-READING-1, not as an unknown session; new
    readings beside repeats are stored and evaluated, wherever the repeats sit in the
    batch (the insert tells them apart: on SQLite by the rowids it added)."""
    ingest = VitalsIngest(SiteRules(MonitoringRules()))
    first = incoming("echoed", NOW - timedelta(seconds=30), heart_rate=80)
    async with UnitOfWork(sessions) as uow:
        await ingest.apply(uow, [first])
        await uow.commit()
    reused = Incoming(first.reading, NOW, "ses-2", "device", first.event_id)
    async with UnitOfWork(sessions) as uow:
        echo = await ingest.apply(uow, [first, reused])
    assert (echo.duplicates, echo.stored) == ([first], [])
    assert [r.code for r in echo.rejected] == ["MON-READING-1"]  # another session's id
    for batch in (
        [first, incoming("new-1", NOW, heart_rate=81)],
        [incoming("new-2", NOW, heart_rate=82), first],
        [incoming("new-3", NOW, heart_rate=83), first, incoming("new-4", NOW, heart_rate=84)],
    ):
        async with UnitOfWork(sessions) as uow:
            mixed = await ingest.apply(uow, batch)
            await uow.commit()
        assert [i.reading.reading_id for i in mixed.stored] == [
            i.reading.reading_id for i in batch if i is not first
        ]
        assert (mixed.duplicates, mixed.rejected) == ([first], [])
    assert await _reading_ids(sessions) == ["echoed", "new-1", "new-2", "new-3", "new-4"]
    assert await _reading_count(sessions) == 5


async def test_repeats_among_more_readings_than_one_insert_statement_takes_are_found(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    """The SQLite insert goes in statements of 5,000 rows: the rows it added stay the
    last rowids across them, so repeats at either end and in the middle are found."""
    ingest = VitalsIngest(SiteRules(MonitoringRules()))
    stored = [incoming(f"old-{n}", NOW - timedelta(minutes=1), heart_rate=80) for n in range(3)]
    async with UnitOfWork(sessions) as uow:
        await ingest.apply(uow, stored)
        await uow.commit()
    new = [incoming(f"new-{n:04d}", NOW, heart_rate=80) for n in range(5_000)]
    batch = [stored[0], *new[:2_600], stored[1], *new[2_600:], stored[2]]
    async with UnitOfWork(sessions) as uow:
        result = await ingest.apply(uow, batch)
        await uow.commit()
    assert (len(result.stored), result.duplicates, result.rejected) == (5_000, stored, [])
    assert await _reading_count(sessions) == 5_003


async def test_a_stored_reading_repeated_after_its_window_closed_is_a_duplicate_not_refused(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    """A gateway retrying after the session closed must not dead-letter a reading that
    was stored while the window was open (MON-WINDOW-1 is for new readings)."""
    ingest = VitalsIngest(SiteRules(MonitoringRules()))
    first = incoming("before-close", NOW - timedelta(seconds=30), heart_rate=80)
    async with UnitOfWork(sessions) as uow:
        await ingest.apply(uow, [first])
        await uow.commit()
    async with sessions() as session, session.begin():
        await session.exec(text("UPDATE monitored_sessions SET status = 'completed'"))  # type: ignore[call-overload]
    late = incoming("after-close", NOW, heart_rate=80)
    async with UnitOfWork(sessions) as uow:
        result = await ingest.apply(uow, [first, late])
    assert (result.duplicates, result.stored) == ([first], [])
    assert [(r.item, r.code) for r in result.rejected] == [(late, "MON-WINDOW-1")]


async def test_a_reading_stored_by_another_writer_before_the_lock_is_a_duplicate(
    sessions: async_sessionmaker[AsyncSession], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Another writer (an HTTP request, another process) may store one of the batch's
    readings just before the batch takes the sessions' lock: the batch's insert must
    find it, so it is a duplicate, not a second row or a conflict."""
    lock = store.lock_and_load_sessions

    async def another_writer_first(
        session: AsyncSession, session_ids: Any
    ) -> dict[str, store.SessionRow]:
        async with sessions() as other, other.begin():
            await store.insert_readings(other, [incoming("r-raced", NOW, heart_rate=80)], NOW)
        return await lock(session, session_ids)

    monkeypatch.setattr(store, "lock_and_load_sessions", another_writer_first)
    ingest = VitalsIngest(SiteRules(MonitoringRules()))
    batch = [incoming("r-raced", NOW, heart_rate=80), incoming("r-new", NOW, heart_rate=81)]
    async with UnitOfWork(sessions) as uow:
        result = await ingest.apply(uow, batch)
        await uow.commit()
    assert [i.reading.reading_id for i in result.stored] == ["r-new"]
    assert [i.reading.reading_id for i in result.duplicates] == ["r-raced"]
    assert await _reading_ids(sessions) == ["r-new", "r-raced"]


async def test_the_lock_reads_the_sessions_it_locks_in_one_statement_fewer(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    """Each batch and HTTP reading locks its sessions and reads them: the lock hands the
    rows back (SQLite: one UPDATE ... RETURNING; PostgreSQL: the ordered SELECT ... FOR
    UPDATE, then the UPDATE) as the rules read them (booleans, an aware first dose, the
    rule state decoded), versions bumped once, unknown ids absent."""
    first_dose = NOW - timedelta(minutes=12)
    async with sessions() as session, session.begin():
        await session.exec(  # type: ignore[call-overload]
            text("UPDATE monitored_sessions SET first_dose_at = :at"), params={"at": first_dose}
        )
    statements: list[str] = []

    def seen(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        statements.append(" ".join(statement.split()))

    async def versions() -> list[int]:
        async with sessions() as session:
            found = await session.exec(  # type: ignore[call-overload]
                text("SELECT version FROM monitored_sessions ORDER BY session_id")
            )
            return list(found.scalars())

    before = await versions()
    engine = sessions.kw["bind"].sync_engine
    async with sessions() as session, session.begin():
        event.listen(engine, "before_cursor_execute", seen)
        try:
            locked = await store.lock_and_load_sessions(session, ["ses-unknown", "ses-1"])
        finally:
            event.remove(engine, "before_cursor_execute", seen)
    assert list(locked) == ["ses-1"]
    row = locked["ses-1"]
    assert (row.session_id, row.patient_id, row.site_id) == ("ses-1", PATIENT, SITE)
    assert (row.phase, row.status) == ("dosing", "checked_in")
    assert (row.predose_decision_pending, row.bp_check_done) == (False, False)
    assert type(row.bp_check_done) is bool
    assert row.first_dose_at == first_dose
    assert row.first_dose_at.tzinfo is not None
    assert isinstance(row.rule_state, dict)
    assert await versions() == [v + 1 for v in before]
    assert len(statements) == (2 if engine.dialect.name == "postgresql" else 1)
    assert statements[-1].startswith("UPDATE monitored_sessions SET version = version + 1")


async def test_a_batch_of_new_readings_reads_nothing_to_find_repeats(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    """The alert path's batch of one: the insert is the repeat check, so no statement
    reads the readings table or asks SQLite whether another connection committed."""
    statements: list[str] = []

    def seen(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        statements.append(" ".join(statement.split()))

    engine = sessions.kw["bind"].sync_engine
    event.listen(engine, "before_cursor_execute", seen)
    try:
        async with UnitOfWork(sessions) as uow:
            result = await VitalsIngest(SiteRules(MonitoringRules())).apply(
                uow, [incoming("r-1", NOW, heart_rate=80)]
            )
            await uow.commit()
    finally:
        event.remove(engine, "before_cursor_execute", seen)
    assert len(result.stored) == 1
    readers = [s for s in statements if "FROM readings" in s or "data_version" in s]
    assert readers == []
    assert sum(s.startswith("INSERT INTO readings") for s in statements) == 1


@settings(max_examples=400)
@given(
    st.lists(
        st.datetimes(
            min_value=datetime(1970, 1, 2),
            max_value=datetime(2200, 1, 1),
            timezones=st.one_of(
                st.just(UTC),
                st.timezones(),
                st.builds(timezone, st.timedeltas(timedelta(hours=-23), timedelta(hours=23))),
            ),
        )
        | st.builds(lambda d: d.replace(microsecond=0, tzinfo=UTC), st.datetimes()),
        max_size=12,
    )
)
def test_a_batch_of_timestamps_is_stored_as_one_at_a_time(values: list[datetime]) -> None:
    """The readings insert turns a batch's timestamps into SQLite's text at once; each
    must be exactly what `sqlite_datetime` (the ORM's storage format) makes of it."""
    assert store.sqlite_datetimes(values) == [store.sqlite_datetime(v) for v in values]


async def test_SPR_MON_1_a_batch_cancels_the_check_timers_of_its_sessions_only(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    """A BP reading in the 40-minute window settles SPR-MON-1: the session's reminder and
    overdue timers are cancelled (all of a batch's in one statement); a fired timer and
    another session's stay as they are."""
    rules = MonitoringRules()
    first_dose = NOW - timedelta(minutes=rules.bp_check_due_minutes)
    other = reminder_key("ses-2")
    async with sessions() as session, session.begin():
        await session.exec(  # type: ignore[call-overload]
            text("UPDATE monitored_sessions SET first_dose_at = :at"), params={"at": first_dose}
        )
        for kind, key in ((REMINDER, reminder_key("ses-1")), (OVERDUE, overdue_key("ses-1"))):
            await timers.schedule(
                session, kind=kind, key=key, due_at=NOW, payload={"session_id": "ses-1"}
            )
        await timers.schedule(
            session, kind=REMINDER, key=other, due_at=NOW, payload={"session_id": "ses-2"}
        )
    ingest = VitalsIngest(SiteRules(rules))
    async with UnitOfWork(sessions) as uow:
        early = incoming("bp-5", NOW - timedelta(minutes=35), bp_systolic=128, bp_diastolic=84)
        result = await ingest.apply(uow, [early])
        await uow.commit()
    assert len(result.stored) == 1
    async with sessions() as session:
        assert await timers.pending_job(session, reminder_key("ses-1")) is not None
    async with UnitOfWork(sessions) as uow:
        reading = incoming("bp-40", NOW, bp_systolic=128, bp_diastolic=84)
        result = await ingest.apply(uow, [reading])
        await uow.commit()
    assert len(result.stored) == 1
    async with sessions() as session:
        [row] = (await store.lock_and_load_sessions(session, ["ses-1"])).values()
        assert row.bp_check_done
        statuses = {job.key: job.status for job in await session.exec(select(ScheduledJob))}
    assert statuses == {
        reminder_key("ses-1"): timers.CANCELLED,
        overdue_key("ses-1"): timers.CANCELLED,
        other: timers.PENDING,
    }


# Row locks held by another transaction: PostgreSQL only (SQLite has one writer at a time).
@pytest.mark.parametrize("database_url", ["postgres"], indirect=True)
async def test_SPR_MON_1_a_batch_does_not_wait_for_a_reminder_being_fired(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    """On PostgreSQL a timer worker firing the 40-minute reminder holds the timer's row and
    then waits for the session; a batch holding the session whose BP reading satisfies the
    check must not wait for that row (the two deadlocked in bench/vitals_throughput.py
    --scale 1,2). The batch leaves the firing reminder alone and cancels the rest; the
    reminder then finds the check done and says nothing."""
    rules = MonitoringRules()
    first_dose = NOW - timedelta(minutes=rules.bp_check_due_minutes)
    async with sessions() as session, session.begin():
        await session.exec(  # type: ignore[call-overload]
            text("UPDATE monitored_sessions SET first_dose_at = :at"), params={"at": first_dose}
        )
        for kind, key in ((REMINDER, reminder_key("ses-1")), (OVERDUE, overdue_key("ses-1"))):
            payload = {"session_id": "ses-1"}
            await timers.schedule(session, kind=kind, key=key, due_at=NOW, payload=payload)
    ingest = VitalsIngest(SiteRules(rules))
    async with sessions() as worker, worker.begin():
        firing = select(ScheduledJob).where(ScheduledJob.key == reminder_key("ses-1"))
        await worker.exec(firing.with_for_update())  # the worker has claimed the reminder
        async with UnitOfWork(sessions) as uow:
            # Waiting for the worker's row would be forever here: fail instead.
            await uow.session.exec(text("SET LOCAL lock_timeout = '10s'"))  # type: ignore[call-overload]
            reading = incoming("bp-40", NOW, bp_systolic=128, bp_diastolic=84)
            result = await ingest.apply(uow, [reading])
            await uow.commit()
    assert [i.reading.reading_id for i in result.stored] == ["bp-40"]
    async with sessions() as session:
        [row] = (await store.lock_and_load_sessions(session, ["ses-1"])).values()
        assert row.bp_check_done
        assert await timers.pending_job(session, overdue_key("ses-1")) is None
        assert await timers.pending_job(session, reminder_key("ses-1")) is not None
    worker_fires = TimerWorker(sessions, timer_handlers(SiteRules(rules)))
    assert await worker_fires.fire_due() == 1
    async with sessions() as session:
        outbox = await session.exec(  # type: ignore[call-overload]
            text("SELECT COUNT(*) FROM outbox_messages")
        )
        assert outbox.scalar_one() == 0  # no ObservationDue: the check was done


def test_the_stored_reading_and_the_rules_reading_carry_the_contracts_metrics() -> None:
    """One list of metrics (VITAL_METRICS): the readings table, the rules' Reading and
    the store's column lists follow it, in its order."""
    table = [c.name for c in readings_table.columns]
    domain = [f.name for f in dataclasses.fields(Reading)]
    for columns in (table, domain, list(store.INSERT_COLUMNS), list(store.READING_COLUMNS)):
        assert [c for c in columns if c in VITAL_METRICS] == list(VITAL_METRICS)
    assert set(VITAL_METRICS) <= set(VitalsRecordedData.model_fields)
