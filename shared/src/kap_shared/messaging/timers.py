"""Durable timers: deadlines that survive restarts and fire exactly once.

A timer is a row in `scheduled_jobs`, written in the same transaction as the
state change that set it (e.g. "integration due 72 h after this dosing
session"). A worker fires due rows: the handler's effects, the events it
publishes (outbox) and the row's `fired` mark commit together, so a crash
neither loses a deadline nor fires it twice.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, func, update
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value
from sqlalchemy.orm.util import identity_key
from sqlalchemy.sql import Executable
from sqlmodel import Field, col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from ..db import PlatformTable, is_postgres, json_column
from ..events.envelope import as_utc, new_id, utc_now
from ..logging import get_logger
from ..tasks import cancel_and_wait, run_when_woken
from .unit_of_work import OnCommit, UnitOfWork, nothing_to_notify
from .upserts import PerDialect, bound, insert_on_conflict

log = get_logger(__name__)

PENDING, FIRED, CANCELLED = "pending", "fired", "cancelled"


class ScheduledJob(PlatformTable, table=True):
    __tablename__ = "scheduled_jobs"

    job_id: str = Field(default_factory=new_id, primary_key=True, max_length=36)
    # One live timer per key (e.g. "integration-due:<session_id>"): re-scheduling moves it.
    key: str = Field(unique=True, max_length=200)
    kind: str = Field(index=True, max_length=64)
    due_at: datetime = Field(index=True)
    payload: dict[str, Any] = json_column(dict)
    status: str = Field(default=PENDING, index=True, max_length=16)
    created_at: datetime = Field(default_factory=utc_now)
    fired_at: datetime | None = None
    attempts: int = 0
    last_error: str | None = None


async def schedule(
    session: AsyncSession, *, kind: str, key: str, due_at: datetime, payload: Mapping[str, Any]
) -> str:
    """Set (or move) the timer `key`; part of the caller's transaction. Returns its job id.

    One upsert on the key instead of a look-up and then an insert or update: every
    statement is a round trip to the database, and an alert's escalation timer is set on
    the alert path (bench/README.md, alert latency). The upsert is a plain statement, not
    the ORM's bulk INSERT, which spent more Python on each call (a cache key from the
    values, a ScheduledJob built from the returned row) than the database did on the row.
    A moved timer keeps its `job_id` and starts afresh (pending, no attempts); a copy of it
    already loaded in the session is refreshed with the row."""
    moved = {
        "kind": kind,
        "due_at": due_at,
        "payload": dict(payload),
        "status": PENDING,
        "fired_at": None,
        "attempts": 0,
        "last_error": None,
    }
    values = {"job_id": new_id(), "key": key, "created_at": utc_now(), **moved}
    statement = _SCHEDULE.of(session)
    return await session.run_sync(_upsert_and_refresh, statement, values)


def _upsert_and_refresh(session: Session, statement: Executable, values: dict[str, Any]) -> str:
    """`schedule`'s work in one hop into the session's greenlet: the upsert (the session
    autoflushes its pending changes first, for plain statements too), then any loaded copy
    of the job takes the row it returned (no reload)."""
    row = session.execute(statement, values).one()
    loaded = session.identity_map.get(identity_key(ScheduledJob, row.job_id))
    if loaded is not None:
        for name, value in row._mapping.items():
            set_committed_value(loaded, name, value)
    job_id: str = row.job_id
    return job_id


_MOVED = ("kind", "due_at", "payload", "status", "fired_at", "attempts", "last_error")


def _schedule_statement(session: AsyncSession) -> Executable:
    """`schedule`'s upsert, built once per dialect (its values bound at execution)."""
    table = ScheduledJob.__table__  # type: ignore[attr-defined]
    moved = bound(table, *_MOVED)
    return (
        insert_on_conflict(session, table)
        .values(**bound(table, "job_id", "key", "created_at"), **moved)
        .on_conflict_do_update(index_elements=[table.c.key], set_=moved)
        .returning(*table.c)
    )


_SCHEDULE = PerDialect(_schedule_statement)


async def cancel(session: AsyncSession, key: str, *, unless_firing: bool = False) -> bool:
    """Cancel a pending timer; False when there was none. Part of the caller's transaction.

    `unless_firing`: on PostgreSQL, leave a timer alone whose row a worker holds to fire it
    (False) instead of waiting for it. For a caller holding a lock the timer's handler takes
    next (the session it is about): waiting would be a deadlock; the handler, which runs
    once that lock is free, must find that it has nothing left to do."""
    if unless_firing and is_postgres(session):
        query = select(ScheduledJob).where(ScheduledJob.key == key)
        found = (await session.exec(query.with_for_update(skip_locked=True))).first()
        job = found if found is not None and found.status == PENDING else None
    else:
        job = await pending_job(session, key)
    if job is None:
        return False
    job.status = CANCELLED
    session.add(job)
    return True


async def cancel_many(
    session: AsyncSession, keys: Sequence[str], *, unless_firing: bool = False
) -> None:
    """`cancel` for many keys in one statement (a batch that settles many timers at once
    would otherwise load and flush each job on its own); `unless_firing` as there."""
    if not keys:
        return
    table = ScheduledJob.__table__  # type: ignore[attr-defined]
    pending: ColumnElement[bool] = col(ScheduledJob.key).in_(keys) & (
        col(ScheduledJob.status) == PENDING
    )
    if unless_firing and is_postgres(session):
        held = select(ScheduledJob.job_id).where(pending).with_for_update(skip_locked=True)
        pending = col(ScheduledJob.job_id).in_(held.scalar_subquery())
    await session.exec(update(table).where(pending).values(status=CANCELLED))


async def job_by_key(session: AsyncSession, key: str) -> ScheduledJob | None:
    return (await session.exec(select(ScheduledJob).where(ScheduledJob.key == key))).first()


async def pending_job(session: AsyncSession, key: str) -> ScheduledJob | None:
    job = await job_by_key(session, key)
    return job if job is not None and job.status == PENDING else None


TimerHandler = Callable[[ScheduledJob, UnitOfWork], Awaitable[None]]


class TimerWorker:
    """Fires due timers with their registered handler, one transaction each."""

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        handlers: Mapping[str, TimerHandler],
        *,
        on_commit: OnCommit = nothing_to_notify,
        poll_seconds: float = 1.0,
        retry_seconds: float = 5.0,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        self._sessions = sessions
        self._handlers = dict(handlers)
        self._on_commit = on_commit
        self._poll_seconds = poll_seconds
        self._retry_seconds = retry_seconds
        self._clock = clock
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def notify(self) -> None:
        self._wake.set()

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="timer-worker")

    async def stop(self) -> None:
        await cancel_and_wait(self._task)
        self._task = None

    async def _run(self) -> None:
        await run_when_woken(
            self.fire_due, self._wake, poll_seconds=self._poll_seconds, failed="timers.failed"
        )

    async def fire_due(self, limit: int = 100) -> int:
        """Fire every timer due now; returns how many fired."""
        now = self._clock()
        async with self._sessions() as session:
            due = list(
                await session.exec(
                    select(ScheduledJob.job_id)
                    .where(ScheduledJob.status == PENDING)
                    .where(col(ScheduledJob.kind).in_(list(self._handlers)))
                    .where(ScheduledJob.due_at <= now)
                    .order_by(col(ScheduledJob.due_at))
                    .limit(limit)
                )
            )
        fired = 0
        for job_id in due:
            fired += await self._fire(job_id, now)
        return fired

    async def due_count(self) -> int:
        """Timers of this worker's kinds that are due now and not fired (for metrics):
        while it is above 0 a deadline has passed unanswered, and once the worker has
        fired them it is 0, which a caller can wait for instead of sleeping."""
        async with self._sessions() as session:
            count = await session.exec(
                select(func.count())
                .select_from(ScheduledJob)
                .where(ScheduledJob.status == PENDING)
                .where(col(ScheduledJob.kind).in_(list(self._handlers)))
                .where(ScheduledJob.due_at <= self._clock())
            )
            return int(count.one())

    async def _fire(self, job_id: str, now: datetime) -> bool:
        try:
            async with UnitOfWork(self._sessions, self._on_commit) as uow:
                query = select(ScheduledJob).where(ScheduledJob.job_id == job_id)
                if is_postgres(uow.session):
                    query = query.with_for_update(skip_locked=True)  # another instance has it
                job = (await uow.session.exec(query)).first()
                if job is None or job.status != PENDING or as_utc(job.due_at) > now:
                    return False  # cancelled, moved or fired meanwhile
                await self._handlers[job.kind](job, uow)
                job.status, job.fired_at = FIRED, now
                uow.session.add(job)
                await uow.commit()
                log.info("timer.fired", kind=job.kind, key=job.key)
                return True
        except Exception as exc:
            log.warning("timer.handler_failed", job_id=job_id, error=repr(exc)[:300])
            async with self._sessions() as session, session.begin():
                job = await session.get(ScheduledJob, job_id)
                if job is not None and job.status == PENDING:
                    job.attempts += 1
                    job.last_error = repr(exc)[:500]
                    job.due_at = now + timedelta(seconds=self._retry_seconds * job.attempts)
                    session.add(job)
            return False
