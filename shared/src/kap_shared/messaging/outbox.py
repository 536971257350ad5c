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
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, fields
from datetime import datetime
from typing import Any

from sqlalchemy import Update, bindparam, func, insert, text, update
from sqlalchemy import select as core_select
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


@dataclass(frozen=True, slots=True)
class OutboxRow:
    """An outbox row as the relay sends it: what a commit hands to the relay
    (`OutboxRelay.notify`) and what the relay reads back when it was not handed."""

    seq: int
    event_id: str
    event_type: str
    topic: str
    key: str
    payload: dict[str, Any]
    headers: dict[str, str]


_OUTBOX = OutboxMessage.__table__  # type: ignore[attr-defined]
_SENT_COLUMNS = [_OUTBOX.c[field.name] for field in fields(OutboxRow)]
# One statement for a transaction's rows. RETURNING's order is SQLite's to choose, so each
# seq comes back beside its (unique) event id.
_INSERT = insert(_OUTBOX).returning(_OUTBOX.c.event_id, _OUTBOX.c.seq)


async def write_outbox(session: AsyncSession, rows: list[dict[str, Any]]) -> list[OutboxRow]:
    """Insert a transaction's outbox rows in its transaction, with one Core statement, and
    return them in the order given, with their `seq`s: an ORM entity per event and the unit
    of work's flush (identity map) were a fifth of an HTTP write's CPU."""
    if not rows:
        return []
    connection = await session.connection()  # the session's transaction
    seqs: dict[str, int] = dict((await connection.execute(_INSERT, rows)).all())
    return [
        OutboxRow(
            seqs[row["event_id"]],
            row["event_id"],
            row["event_type"],
            row["topic"],
            row["key"],
            row["payload"],
            row["headers"],
        )
        for row in rows
    ]


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

    Pipelined, the relay also sends what a commit hands it (`notify(rows)`) without
    reading it back: for an idle service that read was a third of the time from its
    commit to the broker (issue 13). It does so only when the handed rows continue
    exactly after the last `seq` it sent, which proves no row is waiting before them
    (SQLite gives a new row the highest `seq` + 1); anything else (a gap, a reused
    `seq`, a failed send, rows nobody handed) falls back to reading the outbox, which
    also runs on every poll.
    """

    def __init__(
        self,
        engine: AsyncEngine,
        sessions: async_sessionmaker[AsyncSession],
        send: Callable[[Sequence[OutboxRow]], Awaitable[None]],
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
        # Pipelined: committed rows handed by notify(), in commit (= seq) order, not sent yet.
        self._handed: deque[OutboxRow] = deque()
        self._marks_waiting = asyncio.Event()
        self._stopping = False
        self._task: asyncio.Task[None] | None = None
        self._marker: asyncio.Task[None] | None = None

    def notify(self, committed: Sequence[OutboxRow] = ()) -> None:
        """Called after a commit that wrote outbox rows (`committed`, in seq order), so
        they go out at once."""
        if self._woken_at is None:
            self._woken_at = time.perf_counter()
        if self._pipelined:
            self._handed.extend(committed)
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
            if not failures and (sent >= self._batch_size or self._handed):
                continue  # more is waiting (after a failure, the back-off comes first)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=backoff)

    async def publish_pending(self) -> int:
        """One batch, sent and marked sent: returns how many rows were published."""
        return await self._publish(after_seq=0, mark=True)

    async def _send_next(self) -> int:
        """Pipelined: send the rows after the last one sent; the marker marks them. Once
        everything sent is marked, `published_at` alone tells what is left (so a seq
        SQLite reuses after rows were deleted is never skipped)."""
        handed = self._next_handed()
        if handed:
            return await self._send_handed(handed)
        after = self._sent_up_to if self._unmarked else 0
        return await self._publish(after_seq=after, mark=False)

    def _next_handed(self) -> list[OutboxRow]:
        """The handed rows that continue the sent sequence without a gap (none when the
        first one does not: then the outbox is read)."""
        rows: list[OutboxRow] = []
        expected = self._sent_up_to + 1
        for row in self._handed:
            if row.seq != expected or len(rows) == self._batch_size:
                break
            rows.append(row)
            expected += 1
        return rows

    async def _send_handed(self, rows: list[OutboxRow]) -> int:
        """Send handed rows as they are (no read); the marker marks them."""
        woken_at, self._woken_at = self._woken_at, None
        seqs = [row.seq for row in rows]
        try:
            sent = await self._timed_send(rows, woken_at)
        except Exception as exc:
            # From now on the outbox is read again: it has these rows, in order.
            self._handed.clear()
            async with self._sessions() as session, session.begin():
                await session.exec(_failed_statement(seqs, exc))
            raise
        self._sent(seqs, sent)
        log.debug("outbox.published", count=len(rows), handed=True)
        return len(rows)

    async def _timed_send(self, rows: Sequence[OutboxRow], woken_at: float | None) -> float:
        """Send `rows`, reporting the wake-to-send and send stages; returns when they
        were acknowledged (perf_counter). A failed send reports no "send" stage."""
        sending = time.perf_counter()
        if woken_at is not None:
            self._observe("wake_to_send", sending - woken_at)
        await self._send(rows)
        sent = time.perf_counter()
        self._observe("send", sent - sending)
        return sent

    def _sent(self, seqs: list[int], sent: float) -> None:
        """Pipelined: `seqs` are sent; the marker marks them, and the handed rows among
        them (sent as handed, or by a read that came after their commit) are done."""
        self._sent_up_to = max(seqs)
        self._unmarked.append((seqs, utc_now(), sent))
        self._marks_waiting.set()
        sent_now = set(seqs)
        self._handed = deque(row for row in self._handed if row.seq not in sent_now)

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
            connection = await session.connection()
            rows = [
                OutboxRow(*row)
                for row in await connection.execute(
                    _PENDING, {"after_seq": after_seq, "limit": self._batch_size}
                )
            ]
            if not rows:
                return 0
            seqs = [row.seq for row in rows]
            try:
                sent = await self._timed_send(rows, woken_at)
            except Exception as exc:
                # Nothing is marked sent; the whole batch is retried (consumers dedupe).
                error = exc
                await session.exec(_failed_statement(seqs, exc))
            else:
                if mark:
                    await _mark_published(session, seqs, utc_now())
                else:
                    self._sent(seqs, sent)
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


# The relay's read: unsent rows after a seq, in seq order (Core: no ORM entity a row).
_PENDING = (
    core_select(*_SENT_COLUMNS)
    .where(_OUTBOX.c.published_at.is_(None))
    .where(_OUTBOX.c.seq > bindparam("after_seq"))
    .order_by(_OUTBOX.c.seq)
    .limit(bindparam("limit"))
)


def _failed_statement(seqs: list[int], error: Exception) -> Update:
    """Nothing is marked sent; the whole batch is retried (consumers dedupe)."""
    return (
        update(OutboxMessage)
        .where(col(OutboxMessage.seq).in_(seqs))
        .values(attempts=OutboxMessage.attempts + 1, last_error=repr(error)[:500])
    )


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
