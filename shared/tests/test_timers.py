"""Durable timers fire once, at or after their due time, with their effects."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import event as sa_event
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlmodel import select

from kap_shared.events import IntegrationOverdue
from kap_shared.events.envelope import utc_now
from kap_shared.messaging import timers, upserts
from kap_shared.messaging.outbox import OutboxMessage
from kap_shared.messaging.unit_of_work import UnitOfWork

from .dbsupport import Sessions, engine_with_tables
from .examples import example


@pytest.fixture
async def engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    """Timers on both backends: the upsert and the worker's locking differ by dialect."""
    async with engine_with_tables(database_url) as engine:
        yield engine


class Clock:
    def __init__(self) -> None:
        self.now = utc_now()

    def __call__(self) -> datetime:
        return self.now


async def _set(sessions: Sessions, key: str, due_in: timedelta, clock: Clock) -> None:
    async with UnitOfWork(sessions) as uow:
        await timers.schedule(
            uow.session, kind="ping", key=key, due_at=clock.now + due_in, payload={"n": 1}
        )
        await uow.commit()


def _worker(sessions: Sessions, clock: Clock, fired: list[str]) -> timers.TimerWorker:
    async def ping(job: timers.ScheduledJob, uow: UnitOfWork) -> None:
        fired.append(job.key)
        uow.publish(timers_example_event())

    return timers.TimerWorker(sessions, {"ping": ping}, clock=clock, retry_seconds=1)


def timers_example_event() -> IntegrationOverdue:
    return IntegrationOverdue.model_validate(example("IntegrationOverdue"))


async def test_timer_fires_at_due_time_not_before_and_only_once(sessions: Sessions) -> None:
    clock, fired = Clock(), list[str]()
    await _set(sessions, "a", timedelta(hours=72), clock)
    worker = _worker(sessions, clock, fired)

    clock.now += timedelta(hours=72) - timedelta(seconds=1)
    assert await worker.fire_due() == 0
    clock.now += timedelta(seconds=1)
    assert await worker.fire_due() == 1
    assert await worker.fire_due() == 0  # a second pass (or a restarted worker) fires nothing
    assert fired == ["a"]
    async with sessions() as session:
        assert len(list(await session.exec(select(OutboxMessage)))) == 1


async def test_cancelled_timer_never_fires(sessions: Sessions) -> None:
    clock, fired = Clock(), list[str]()
    await _set(sessions, "b", timedelta(minutes=1), clock)
    async with UnitOfWork(sessions) as uow:
        assert await timers.cancel(uow.session, "b")
        await uow.commit()
    clock.now += timedelta(hours=1)
    assert await _worker(sessions, clock, fired).fire_due() == 0
    assert fired == []


async def test_due_count_is_what_the_worker_would_fire_now(sessions: Sessions) -> None:
    """`kap_timers_due` (each service's /metrics): what tests wait on instead of sleeping
    through polls, so it must fall to 0 only once the due timers have fired."""
    clock, fired = Clock(), list[str]()
    await _set(sessions, "due", timedelta(minutes=1), clock)
    await _set(sessions, "cancelled", timedelta(minutes=1), clock)
    await _set(sessions, "later", timedelta(hours=1), clock)
    async with UnitOfWork(sessions) as uow:
        await timers.cancel(uow.session, "cancelled")
        # Another service's kind in a shared test database: not this worker's to fire.
        await timers.schedule(uow.session, kind="other", key="x", due_at=clock.now, payload={})
        await uow.commit()
    worker = _worker(sessions, clock, fired)

    clock.now += timedelta(minutes=1) - timedelta(seconds=1)
    assert await worker.due_count() == 0
    clock.now += timedelta(seconds=1)
    assert await worker.due_count() == 1
    assert await worker.fire_due() == 1
    assert await worker.due_count() == 0
    assert fired == ["due"]


async def test_rescheduling_moves_the_timer(sessions: Sessions) -> None:
    clock, fired = Clock(), list[str]()
    await _set(sessions, "c", timedelta(minutes=1), clock)
    await _set(sessions, "c", timedelta(minutes=10), clock)
    worker = _worker(sessions, clock, fired)
    clock.now += timedelta(minutes=5)
    assert await worker.fire_due() == 0
    clock.now += timedelta(minutes=5)
    assert await worker.fire_due() == 1


async def test_failing_handler_rolls_back_and_retries_later(sessions: Sessions) -> None:
    clock, calls = Clock(), list[str]()
    await _set(sessions, "d", timedelta(0), clock)

    async def flaky(job: timers.ScheduledJob, uow: UnitOfWork) -> None:
        calls.append(job.key)
        uow.publish(timers_example_event())
        if len(calls) == 1:
            raise RuntimeError("channel down")

    worker = timers.TimerWorker(sessions, {"ping": flaky}, clock=clock, retry_seconds=30)
    assert await worker.fire_due() == 0
    async with sessions() as session:
        assert list(await session.exec(select(OutboxMessage))) == []  # rolled back
    assert await worker.fire_due() == 0  # backing off
    clock.now += timedelta(seconds=30)
    assert await worker.fire_due() == 1
    assert calls == ["d", "d"]


async def test_scheduling_is_one_statement_and_a_moved_timer_starts_afresh(
    sessions: Sessions, engine: AsyncEngine
) -> None:
    """A fired (or failed) timer set again is pending again, with its attempts cleared and
    its job id kept; a copy loaded in the session sees the new row. Setting a timer is one
    statement (it is on the alert path: each statement is a round trip to the database)."""
    clock, fired = Clock(), list[str]()
    await _set(sessions, "e", timedelta(0), clock)
    assert await _worker(sessions, clock, fired).fire_due() == 1
    statements: list[str] = []

    def record(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        statements.append(statement)

    async with UnitOfWork(sessions) as uow:
        loaded = await timers.job_by_key(uow.session, "e")
        assert loaded is not None
        assert loaded.status == timers.FIRED
        loaded.attempts = 3  # as a failed run would have left it
        uow.session.add(loaded)
        await uow.session.flush()
        sa_event.listen(engine.sync_engine, "before_cursor_execute", record)
        try:
            job_id = await timers.schedule(
                uow.session, kind="ping", key="e", due_at=clock.now + timedelta(hours=1), payload={}
            )
            await uow.session.flush()  # nothing left to write
        finally:
            sa_event.remove(engine.sync_engine, "before_cursor_execute", record)
        assert job_id == loaded.job_id
        assert (loaded.status, loaded.attempts, loaded.fired_at) == (timers.PENDING, 0, None)
        await uow.commit()
    assert len(statements) == 1
    async with sessions() as session:
        job = await timers.pending_job(session, "e")
    assert job is not None
    assert job.job_id == job_id

    async def again(job: timers.ScheduledJob, uow: UnitOfWork) -> None:
        fired.append(job.key)  # publishes nothing: the example event went out the first time

    clock.now += timedelta(hours=1)
    assert await timers.TimerWorker(sessions, {"ping": again}, clock=clock).fire_due() == 1
    assert fired == ["e", "e"]


async def test_scheduling_writes_the_sessions_pending_changes_first(sessions: Sessions) -> None:
    """The upsert is a plain statement, not the ORM's: a timer added to the session and
    not yet flushed must still be written first, so that setting the same key moves it
    (one row) instead of the later flush colliding with the upsert's row."""
    clock = Clock()
    async with UnitOfWork(sessions) as uow:
        uow.session.add(
            timers.ScheduledJob(kind="ping", key="p", due_at=clock.now, payload={"n": 1})
        )
        await timers.schedule(
            uow.session, kind="ping", key="p", due_at=clock.now + timedelta(hours=2), payload={}
        )
        await uow.commit()
    async with sessions() as session:
        jobs = list(await session.exec(select(timers.ScheduledJob)))
    assert [(job.key, job.payload) for job in jobs] == [("p", {})]
    assert jobs[0].due_at.replace(tzinfo=None) == (clock.now + timedelta(hours=2)).replace(
        tzinfo=None
    )


async def test_the_upsert_is_built_once_and_each_timer_keeps_its_own_values(
    sessions: Sessions, monkeypatch: Any
) -> None:
    """Building the statement (coercing every value, walking it for its cache key) cost
    more Python than running it; it is built once per dialect, its values bound at each
    execution, so no timer may get another's values."""
    built: list[object] = []
    build = upserts.insert_on_conflict

    def counting(*args: Any) -> Any:
        built.append(args)
        return build(*args)

    monkeypatch.setattr(timers, "insert_on_conflict", counting)
    clock = Clock()
    for key, hours in (("f", 1), ("g", 2), ("h", 3)):
        await _set(sessions, key, timedelta(hours=hours), clock)
    assert len(built) <= 1  # once in this process (maybe by an earlier test), not per timer
    async with sessions() as session:
        jobs = {key: await timers.pending_job(session, key) for key in "fgh"}
    due = {key: job.due_at.replace(tzinfo=None) for key, job in jobs.items() if job is not None}
    naive_now = clock.now.replace(tzinfo=None)
    assert due == {k: naive_now + timedelta(hours=h) for k, h in (("f", 1), ("g", 2), ("h", 3))}
    assert len({job.job_id for job in jobs.values() if job is not None}) == 3
