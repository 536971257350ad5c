"""Transactional outbox: events are rows written in the same transaction as
the state change, and a relay publishes them to Kafka afterwards.

A crash between commit and publish loses nothing: the row stays unsent and
the relay (in this process after a restart, or in another instance) sends
it. Delivery is at-least-once, so every consumer deduplicates on `event_id`
(see `inbox`).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any

from sqlalchemy import Update, func, insert, text, update
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker
from sqlmodel import Field, col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from ..db import PlatformTable, is_postgres, json_column
from ..events.envelope import Envelope, utc_now
from ..logging import get_logger
from ..retry import backoff_seconds

log = get_logger(__name__)

# (stage, seconds) -> None; stages: "wake_to_send" (a commit's notify() until its rows
# are read and sending starts), "send" (until the broker acknowledged every row) and
# "mark" (rows marked published, committed). Only batches that published rows count.
RelayObserver = Callable[[str, float], None]

# Postgres advisory-lock key: one relay per database publishes at a time, so
# per-patient order holds even with several instances of a service.
_RELAY_LOCK_KEY = 0x4B4150_0B0


class OutboxMessage(PlatformTable, table=True):
    __tablename__ = "outbox_messages"

    # Monotonic sequence: publishing in `seq` order keeps each patient's events in order.
    seq: int | None = Field(default=None, primary_key=True)
    event_id: str = Field(unique=True, max_length=36)
    event_type: str = Field(max_length=64)
    topic: str = Field(max_length=128)
    key: str = Field(max_length=128)
    payload: dict[str, Any] = json_column()
    headers: dict[str, str] = json_column(dict)
    created_at: datetime = Field(default_factory=utc_now, index=True)
    published_at: datetime | None = Field(default=None, index=True)
    attempts: int = 0
    last_error: str | None = None


# The envelope's `producer`, repeated as a header: a consumer can tell a service's own
# events from its headers, without decoding the value (monitoring's vitals consumer
# reading back the readings its HTTP ingest stored and published).
PRODUCER_HEADER = "producer"


def outbox_values(event: Envelope, headers: dict[str, str] | None = None) -> dict[str, Any]:
    """The outbox row of `event`, as the column values `write_outbox` inserts."""
    return {
        "event_id": str(event.event_id),
        "event_type": event.event_type,
        "topic": event.topic,
        "key": event.patient_id,
        "payload": event.model_dump(mode="json"),
        "headers": {
            "event_type": event.event_type,
            "content-type": "application/json",
            PRODUCER_HEADER: event.producer,
            **(headers or {}),
        },
        "created_at": utc_now(),
        "published_at": None,
        "attempts": 0,
        "last_error": None,
    }


async def write_outbox(session: AsyncSession, rows: list[dict[str, Any]]) -> None:
    """Insert a transaction's outbox rows in its transaction, in the order given, with one
    Core statement: an ORM entity per event and the unit of work's flush (identity map,
    RETURNING of each `seq`) were a fifth of an HTTP write's CPU, and nothing reads the
    rows back before the relay does."""
    if rows:
        connection = await session.connection()  # the session's transaction
        await connection.execute(insert(OutboxMessage.__table__), rows)  # type: ignore[attr-defined]


class OutboxRelay:
    """Publishes unsent outbox rows in order, then marks them sent.

    On SQLite the marking runs beside the sending (`pipelined`): SQLite has one writer
    at a time, so a relay that marked its batch before reading the next would wait
    behind whatever transaction holds the lock (a vitals batch: hundreds of ms under
    load) while the next alert waits behind the relay. One process owns a SQLite file,
    so its relay alone reads the outbox: it continues after the highest `seq` it sent
    (SQLite assigns `seq` in commit order) while a marker task marks the sent rows.
    Each mark is one UPDATE in autocommit mode, so SQLite's write lock is held only
    while that statement runs in the driver's thread: a mark inside a transaction held
    the lock across thread hand-offs and event-loop turns (its COMMIT waited for the
    busy process's loop), and a vitals batch or an event handler that tried to write
    meanwhile slept in SQLite's busy handler (steps of up to 100 ms).
    A crash before the mark re-sends them after the restart: at-least-once, as always.
    On PostgreSQL several instances' relays take turns under an advisory lock that
    lasts one transaction, and `seq` is not commit-ordered, so there a batch is sent
    and marked in one locked transaction (no global write lock makes that wait).
    """

    def __init__(
        self,
        engine: AsyncEngine,
        sessions: async_sessionmaker[AsyncSession],
        send: Callable[[list[OutboxMessage]], Awaitable[None]],
        *,
        batch_size: int = 500,
        poll_seconds: float = 0.5,
        observe: RelayObserver = lambda stage, seconds: None,
        pipelined: bool = True,
    ) -> None:
        self._engine = engine
        self._sessions = sessions
        self._send = send
        self._batch_size = batch_size
        self._poll_seconds = poll_seconds
        self._observe = observe
        # Never on PostgreSQL: there `seq` is not commit-ordered (see above).
        self._pipelined = pipelined and not is_postgres(engine)
        self._wake = asyncio.Event()
        # When the first notify() since the last batch arrived (for the "wake_to_send" stage).
        self._woken_at: float | None = None
        # Pipelined: the highest seq sent by this process, and sent batches not marked yet.
        self._sent_up_to = 0
        self._unmarked: list[tuple[list[int], datetime, float]] = []
        self._marks_waiting = asyncio.Event()
        self._stopping = False
        self._task: asyncio.Task[None] | None = None
        self._marker: asyncio.Task[None] | None = None

    def notify(self) -> None:
        """Called after a commit that wrote outbox rows, so they go out at once."""
        if self._woken_at is None:
            self._woken_at = time.perf_counter()
        self._wake.set()

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="outbox-relay")
        if self._pipelined:
            self._marker = asyncio.create_task(self._mark_loop(), name="outbox-marker")

    async def stop(self, flush_timeout: float = 10.0) -> None:
        """Flush what is pending (bounded), then stop."""
        self._stopping = True
        self._wake.set()
        self._marks_waiting.set()
        for task in (self._task, self._marker):  # the sender first: the marker drains last
            if task is None:
                continue
            try:
                await asyncio.wait_for(task, timeout=flush_timeout)
            except TimeoutError:
                task.cancel()
        self._task = self._marker = None

    async def _run(self) -> None:
        backoff, failures = self._poll_seconds, 0
        while True:
            # Clear before publishing: a notify() arriving mid-batch must not be lost.
            self._wake.clear()
            try:
                sent = await (self._send_next() if self._pipelined else self.publish_pending())
                backoff, failures = self._poll_seconds, 0
            except Exception as exc:
                sent, failures = 0, failures + 1
                backoff = backoff_seconds(failures, first=self._poll_seconds * 2)
                log.warning("outbox.publish_failed", error=repr(exc)[:300], retry_in=backoff)
            if self._stopping:
                if sent == 0:
                    self._marks_waiting.set()  # let the marker finish and end
                    return
                continue  # flushing: no waiting between batches
            if sent >= self._batch_size:
                continue  # more is waiting
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=backoff)

    async def publish_pending(self) -> int:
        """One batch, sent and marked sent: returns how many rows were published."""
        return await self._publish(after_seq=0, mark=True)

    async def _send_next(self) -> int:
        """Pipelined: send the rows after the last one sent; the marker marks them. Once
        everything sent is marked, `published_at` alone tells what is left (so a seq
        SQLite reuses after rows were deleted is never skipped)."""
        after = self._sent_up_to if self._unmarked else 0
        return await self._publish(after_seq=after, mark=False)

    async def _publish(self, *, after_seq: int, mark: bool) -> int:
        error: Exception | None = None
        # A notify() from here on is for rows this batch may not see: the next one's.
        woken_at, self._woken_at = self._woken_at, None
        async with self._sessions() as session, session.begin():
            if is_postgres(self._engine):
                locked = await session.scalar(
                    text("SELECT pg_try_advisory_xact_lock(:k)"), {"k": _RELAY_LOCK_KEY}
                )
                if not locked:
                    return 0
            rows = list(
                await session.exec(
                    select(OutboxMessage)
                    .where(col(OutboxMessage.published_at).is_(None))
                    .where(col(OutboxMessage.seq) > after_seq)
                    .order_by(col(OutboxMessage.seq))
                    .limit(self._batch_size)
                )
            )
            if not rows:
                return 0
            seqs = [row.seq for row in rows if row.seq is not None]
            sending = time.perf_counter()
            if woken_at is not None:
                self._observe("wake_to_send", sending - woken_at)
            try:
                await self._send(rows)
            except Exception as exc:
                # Nothing is marked sent; the whole batch is retried (consumers dedupe).
                error = exc
                await session.exec(
                    update(OutboxMessage)
                    .where(col(OutboxMessage.seq).in_(seqs))
                    .values(attempts=OutboxMessage.attempts + 1, last_error=repr(exc)[:500])
                )
            else:
                sent = time.perf_counter()
                self._observe("send", sent - sending)
                if mark:
                    await _mark_published(session, seqs, utc_now())
                else:
                    self._sent_up_to = max(seqs)
                    self._unmarked.append((seqs, utc_now(), sent))
                    self._marks_waiting.set()
        if error is not None:
            raise error
        if mark:
            self._observe("mark", time.perf_counter() - sent)
        log.debug("outbox.published", count=len(rows))
        return len(rows)

    async def _mark_loop(self) -> None:
        """Pipelined: mark what the sender sent, oldest batch first, each batch with one
        autocommit statement; retried until it succeeds."""
        failures = 0
        while True:
            await self._marks_waiting.wait()
            self._marks_waiting.clear()
            while self._unmarked:
                seqs, acked_at, sent = self._unmarked[0]
                try:
                    async with self._engine.connect() as connection:
                        alone = await connection.execution_options(isolation_level="AUTOCOMMIT")
                        await alone.execute(_mark_statement(seqs, acked_at))
                except Exception as exc:
                    failures += 1
                    retry_in = backoff_seconds(failures, first=self._poll_seconds)
                    log.warning("outbox.mark_failed", error=repr(exc)[:300], retry_in=retry_in)
                    await asyncio.sleep(retry_in)
                    continue
                failures = 0
                del self._unmarked[0]
                self._observe("mark", time.perf_counter() - sent)
            if self._stopping and (self._task is None or self._task.done()):
                return


def _mark_statement(seqs: list[int], acked_at: datetime) -> Update:
    return (
        update(OutboxMessage)
        .where(col(OutboxMessage.seq).in_(seqs))
        .values(published_at=acked_at, attempts=OutboxMessage.attempts + 1)
    )


async def _mark_published(session: AsyncSession, seqs: list[int], acked_at: datetime) -> None:
    await session.exec(_mark_statement(seqs, acked_at))


async def outbox_backlog(sessions: async_sessionmaker[AsyncSession]) -> tuple[int, datetime | None]:
    """Unsent count and the creation time of the oldest unsent event (for metrics)."""
    async with sessions() as session:
        result = await session.exec(
            select(func.count(), func.min(OutboxMessage.created_at)).where(
                col(OutboxMessage.published_at).is_(None)
            )
        )
        count, oldest = result.one()
        return int(count), oldest
