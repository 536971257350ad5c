"""Unit of work + transactional outbox + relay, on a real SQLite file database."""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import sqlite3
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

import pytest
from sqlalchemy import delete
from sqlalchemy import event as sa_event
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from kap_shared.events import EVENT_TYPES, Envelope, decode
from kap_shared.messaging.outbox import OutboxMessage, OutboxRelay, OutboxRow, outbox_backlog
from kap_shared.messaging.unit_of_work import OnCommit, UnitOfWork, nothing_to_notify
from kap_shared.testing import until
from kap_shared.tracing import continue_trace, trace_id_of

from .dbsupport import CareTask, Sessions, care_tasks, outbox_rows
from .examples import example

T = TypeVar("T")

pytestmark = pytest.mark.filterwarnings("ignore:(?s).*session.exec:DeprecationWarning")


def event(event_type: str, patient_id: str = "pt-1") -> Envelope:
    return EVENT_TYPES[event_type].model_validate(
        example(event_type, event_id=str(uuid.uuid4()), patient_id=patient_id)
    )


async def in_fresh_context(coro: Awaitable[T]) -> T:
    """Run with no trace (or anything else) in the context, and leak nothing back."""
    return await asyncio.create_task(coro, context=contextvars.Context())  # type: ignore[arg-type]


async def commit_events(
    sessions: Sessions, events: list[Envelope], on_commit: OnCommit = nothing_to_notify
) -> None:
    async def run() -> None:
        async with UnitOfWork(sessions, on_commit) as uow:
            for e in events:
                uow.session.add(CareTask(patient_id=e.patient_id, kind=f"after-{e.event_type}"))
                uow.publish(e)
            await uow.commit()

    await in_fresh_context(run())


class FakeSender:
    """Records each batch the relay sends; can be told to fail."""

    def __init__(self) -> None:
        self.batches: list[list[dict[str, Any]]] = []
        self.fail_with: Exception | None = None
        self.sent = asyncio.Event()

    async def __call__(self, rows: Sequence[OutboxRow]) -> None:
        if self.fail_with is not None:
            raise self.fail_with
        self.batches.append(
            [
                {
                    "event_id": r.event_id,
                    "topic": r.topic,
                    "key": r.key,
                    "headers": r.headers,
                    "payload": r.payload,
                    "seq": r.seq,
                }
                for r in rows
            ]
        )
        self.sent.set()

    @property
    def event_ids(self) -> list[str]:
        return [m["event_id"] for batch in self.batches for m in batch]


async def wait_until_backlog_empty(sessions: Sessions) -> None:
    while (await outbox_backlog(sessions))[0]:  # noqa: ASYNC110 - polling the database
        await asyncio.sleep(0.01)
    await asyncio.sleep(0.05)  # let the relay go back to waiting


# --- UnitOfWork + outbox ------------------------------------------------------------------


async def test_committed_uow_stores_state_and_events_in_order(sessions: Sessions) -> None:
    events = [
        event("PatientReferred", "pt-1"),
        event("PatientScreened", "pt-1"),
        event("OutcomeRecorded", "pt-2"),
        event("VitalsRecorded", "pt-1"),
    ]
    await commit_events(sessions, events)

    rows = await outbox_rows(sessions)
    assert [r.event_id for r in rows] == [str(e.event_id) for e in events]
    seqs = [r.seq for r in rows if r.seq is not None]
    assert len(seqs) == len(rows)
    assert seqs == sorted(seqs)
    assert len(set(seqs)) == len(seqs)
    for row, e in zip(rows, events, strict=True):
        assert row.topic == e.topic == EVENT_TYPES[e.event_type].topic
        assert row.key == e.patient_id
        assert row.event_type == e.event_type
        assert row.headers == {
            "event_type": e.event_type,
            "content-type": "application/json",
            "producer": e.producer,
        }
        assert decode(row.topic, row.payload) == e  # the stored payload is the contract JSON
        assert row.published_at is None
        assert row.attempts == 0
    assert [t.kind for t in await care_tasks(sessions)] == [f"after-{e.event_type}" for e in events]


async def test_a_uow_writes_all_its_events_with_one_statement(
    engine: AsyncEngine, sessions: Sessions
) -> None:
    """The outbox rows of one transaction go in with one INSERT statement (`write_outbox`,
    at commit), in the order they were published: a row at a time would cost a statement
    each, and an alert's handler publishes several."""
    inserts: list[bool] = []

    def count(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        if statement.startswith("INSERT INTO outbox_messages"):
            inserts.append(True)

    events = [event("NotificationSent", "pt-1") for _ in range(3)]
    sa_event.listen(engine.sync_engine, "before_cursor_execute", count)
    try:
        await commit_events(sessions, events)
    finally:
        sa_event.remove(engine.sync_engine, "before_cursor_execute", count)
    assert len(inserts) == 1
    rows = await outbox_rows(sessions)
    assert [r.event_id for r in rows] == [str(e.event_id) for e in events]  # seq order kept


async def test_uow_exiting_without_commit_stores_neither_state_nor_events(
    sessions: Sessions,
) -> None:
    calls: list[int] = []

    async def run() -> None:
        async with UnitOfWork(sessions, lambda _rows: calls.append(1)) as uow:
            uow.session.add(CareTask(patient_id="pt-1", kind="draft"))
            uow.publish(event("ConsentRecorded"))
            assert len(uow.published) == 1

    await in_fresh_context(run())
    assert await outbox_rows(sessions) == []
    assert await care_tasks(sessions) == []
    assert calls == []


async def test_uow_failing_before_commit_rolls_back_and_propagates(sessions: Sessions) -> None:
    async def command() -> None:
        async with UnitOfWork(sessions) as uow:
            uow.session.add(CareTask(patient_id="pt-1", kind="x"))
            uow.publish(event("SessionScheduled"))
            await uow.session.flush()  # even flushed rows go
            raise RuntimeError("rule check failed")

    with pytest.raises(RuntimeError, match="rule check failed"):
        await command()
    assert await outbox_rows(sessions) == []
    assert await care_tasks(sessions) == []


async def test_on_commit_called_only_when_events_were_published(sessions: Sessions) -> None:
    calls: list[str] = []

    async with UnitOfWork(sessions, lambda _rows: calls.append("state-only")) as uow:
        uow.session.add(CareTask(patient_id="pt-1", kind="no-event"))
        await uow.commit()
    assert calls == []

    await commit_events(
        sessions, [event("PhaseAdvanced")], lambda _rows: calls.append("with-event")
    )
    assert calls == ["with-event"]
    assert len(await care_tasks(sessions)) == 2


async def test_on_commit_not_called_when_commit_fails(sessions: Sessions) -> None:
    calls: list[int] = []
    duplicate = event("SessionCancelled")
    await commit_events(sessions, [duplicate])

    async def publish_again() -> None:
        async with UnitOfWork(sessions, lambda _rows: calls.append(1)) as uow:
            uow.publish(duplicate)  # same event_id twice violates the outbox's unique key
            await uow.commit()

    with pytest.raises(IntegrityError, match="UNIQUE"):
        await publish_again()
    assert calls == []
    assert len(await outbox_rows(sessions)) == 1


async def test_active_trace_is_copied_to_the_traceparent_header(sessions: Sessions) -> None:
    incoming = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"

    async def run() -> str:
        current = continue_trace(incoming)
        async with UnitOfWork(sessions) as uow:
            uow.publish(event("VitalsAlert"))
            await uow.commit()
        return current

    current = await in_fresh_context(run())
    (row,) = await outbox_rows(sessions)
    assert row.headers["traceparent"] == current
    assert trace_id_of(row.headers["traceparent"]) == "0af7651916cd43dd8448eb211c80319c"


def test_uow_session_outside_async_with_is_an_error(sessions: Sessions) -> None:
    with pytest.raises(RuntimeError, match="outside"):
        UnitOfWork(sessions).publish(event("PatientReferred"))


# --- OutboxRelay --------------------------------------------------------------------------


async def test_relay_publishes_in_seq_order_and_marks_rows_published(
    engine: AsyncEngine, sessions: Sessions
) -> None:
    first = [event("PatientReferred", "pt-1"), event("PatientScreened", "pt-2")]
    second = [event("ConsentRecorded", "pt-1"), event("PatientScreened", "pt-1")]
    await commit_events(sessions, first)
    await commit_events(sessions, second)
    send = FakeSender()
    relay = OutboxRelay(engine, sessions, send)

    before = datetime.now(UTC).replace(tzinfo=None)
    assert await relay.publish_pending() == 4

    assert send.event_ids == [str(e.event_id) for e in first + second]
    (batch,) = send.batches
    assert [m["seq"] for m in batch] == sorted(m["seq"] for m in batch)
    assert [m["key"] for m in batch] == ["pt-1", "pt-2", "pt-1", "pt-1"]
    assert batch[0]["topic"] == "kap.intake.events.v1"
    assert batch[0]["headers"]["event_type"] == "PatientReferred"
    rows = await outbox_rows(sessions)
    for row in rows:
        assert row.published_at is not None
        published = row.published_at.replace(tzinfo=None)
        assert (
            before - timedelta(seconds=1)
            <= published
            <= datetime.now(UTC).replace(tzinfo=None) + timedelta(seconds=1)
        )
        assert row.attempts == 1
        assert row.last_error is None

    assert await relay.publish_pending() == 0
    assert len(send.batches) == 1, "a published row is never sent again"


async def test_relay_respects_batch_size_and_keeps_order_across_batches(
    engine: AsyncEngine, sessions: Sessions
) -> None:
    events = [event("VitalsRecorded", f"pt-{i % 2}") for i in range(5)]
    await commit_events(sessions, events)
    send = FakeSender()
    relay = OutboxRelay(engine, sessions, send, batch_size=2)

    counts = [await relay.publish_pending() for _ in range(4)]

    assert counts == [2, 2, 1, 0]
    assert [len(b) for b in send.batches] == [2, 2, 1]
    assert send.event_ids == [str(e.event_id) for e in events]


async def test_failed_send_marks_nothing_published_records_error_and_retries_same_rows(
    engine: AsyncEngine, sessions: Sessions
) -> None:
    events = [event("DoseAdministered"), event("VitalsAlert"), event("ObservationDue")]
    await commit_events(sessions, events)
    send = FakeSender()
    send.fail_with = ConnectionError("kafka: no brokers available")
    relay = OutboxRelay(engine, sessions, send)

    with pytest.raises(ConnectionError, match="no brokers"):
        await relay.publish_pending()
    with pytest.raises(ConnectionError):
        await relay.publish_pending()

    rows = await outbox_rows(sessions)
    assert [r.published_at for r in rows] == [None, None, None]
    assert [r.attempts for r in rows] == [2, 2, 2]
    assert all("no brokers available" in (r.last_error or "") for r in rows)
    assert await outbox_backlog(sessions) == (3, rows[0].created_at)

    send.fail_with = None
    assert await relay.publish_pending() == 3
    assert send.event_ids == [str(e.event_id) for e in events]
    rows = await outbox_rows(sessions)
    assert all(r.published_at is not None for r in rows)
    assert [r.attempts for r in rows] == [3, 3, 3]


async def test_outbox_backlog_counts_unsent_rows_and_reports_the_oldest(
    engine: AsyncEngine, sessions: Sessions
) -> None:
    assert await outbox_backlog(sessions) == (0, None)

    await commit_events(sessions, [event("SessionCheckedIn"), event("SessionCompleted")])
    await commit_events(sessions, [event("IntegrationOverdue")])
    rows = await outbox_rows(sessions)
    assert rows[0].created_at < rows[2].created_at

    assert await outbox_backlog(sessions) == (3, rows[0].created_at)

    await OutboxRelay(engine, sessions, FakeSender(), batch_size=2).publish_pending()
    assert await outbox_backlog(sessions) == (1, rows[2].created_at)

    await OutboxRelay(engine, sessions, FakeSender()).publish_pending()
    assert await outbox_backlog(sessions) == (0, None)


async def test_running_relay_is_woken_by_notify_after_commit(
    engine: AsyncEngine, sessions: Sessions
) -> None:
    send = FakeSender()
    # A poll interval far longer than the test: only notify() can make it send in time.
    relay = OutboxRelay(engine, sessions, send, poll_seconds=30)
    async with running(relay):
        await asyncio.sleep(0.05)  # the relay has found nothing and is waiting
        e = event("AlertEscalated")
        await commit_events(sessions, [e], on_commit=relay.notify)
        await asyncio.wait_for(send.sent.wait(), timeout=3)
        assert send.event_ids == [str(e.event_id)]
        await wait_until_backlog_empty(sessions)


async def test_relay_reports_its_stages_for_published_batches_only(
    engine: AsyncEngine, sessions: Sessions
) -> None:
    """Where the relay's time goes (kap_outbox_relay_seconds): notify -> sending, the
    broker's acknowledgements, marking sent; nothing for an empty or a failed batch."""
    observed: list[tuple[str, float]] = []
    send = FakeSender()
    relay = OutboxRelay(
        engine, sessions, send, observe=lambda stage, s: observed.append((stage, s))
    )
    assert await relay.publish_pending() == 0
    assert observed == []

    await commit_events(sessions, [event("VitalsAlert")], on_commit=relay.notify)
    await asyncio.sleep(0.02)  # the notify -> sending stage includes this wait
    assert await relay.publish_pending() == 1
    assert [stage for stage, _ in observed] == ["wake_to_send", "send", "mark"]
    assert observed[0][1] >= 0.02
    assert all(seconds >= 0 for _, seconds in observed)

    observed.clear()
    send.fail_with = ConnectionError("broker down")
    await commit_events(sessions, [event("VitalsAlert", "pt-2")], on_commit=relay.notify)
    with pytest.raises(ConnectionError):
        await relay.publish_pending()
    assert [stage for stage, _ in observed] == ["wake_to_send"]  # never "sent"

    observed.clear()
    send.fail_with = None
    assert await relay.publish_pending() == 1  # the retry: no new notify
    assert [stage for stage, _ in observed] == ["send", "mark"]


async def test_notify_during_an_in_flight_batch_is_not_lost(
    engine: AsyncEngine, sessions: Sessions
) -> None:
    first, second = event("VitalsAlert", "pt-1"), event("VitalsAlert", "pt-2")
    relay: OutboxRelay

    class ConcurrentCommit(FakeSender):
        async def __call__(self, rows: Sequence[OutboxRow]) -> None:
            await super().__call__(rows)
            if len(self.batches) == 1:
                # A request handler commits another alert while the first batch is in flight.
                await commit_events(sessions, [second], on_commit=relay.notify)

    send = ConcurrentCommit()
    await commit_events(sessions, [first])
    relay = OutboxRelay(engine, sessions, send, poll_seconds=30)
    relay.start()
    try:
        await asyncio.wait_for(wait_until_backlog_empty(sessions), timeout=1.0)
        assert send.event_ids == [str(first.event_id), str(second.event_id)]
    finally:
        await relay.stop(flush_timeout=0.2)


async def test_relay_keeps_sending_while_another_writer_holds_the_sqlite_lock(
    engine: AsyncEngine, sessions: Sessions
) -> None:
    """SQLite has one writer: marking a batch sent waits behind e.g. a vitals batch's
    transaction. The next alert must not wait behind the marking (pipelined relay)."""
    first, second = event("VitalsAlert", "pt-1"), event("VitalsAlert", "pt-2")
    relay: OutboxRelay
    holder = sessions()
    lock_held = asyncio.Event()

    class HoldTheLockAfterTheFirstBatch(FakeSender):
        async def __call__(self, rows: Sequence[OutboxRow]) -> None:
            await super().__call__(rows)
            if len(self.batches) == 1:
                await commit_events(sessions, [second], on_commit=relay.notify)
                holder.add(CareTask(patient_id="pt-9", kind="a long transaction"))
                await holder.flush()  # holds SQLite's write lock until rolled back
                lock_held.set()

    send = HoldTheLockAfterTheFirstBatch()
    await commit_events(sessions, [first])
    relay = OutboxRelay(engine, sessions, send, poll_seconds=30)
    assert relay._pipelined  # SQLite
    relay.start()
    try:
        await asyncio.wait_for(lock_held.wait(), timeout=3)
        # The second alert goes out while the first one's mark waits for the lock.
        await until(lambda: len(send.batches) == 2, timeout=3)
        assert send.event_ids == [str(first.event_id), str(second.event_id)]
        await holder.rollback()
        await holder.close()
        await asyncio.wait_for(wait_until_backlog_empty(sessions), timeout=5)
        rows = await outbox_rows(sessions)
        assert all(r.published_at is not None and r.attempts == 1 for r in rows)
        assert len(send.batches) == 2  # nothing sent twice
    finally:
        await holder.close()
        await relay.stop(flush_timeout=3)


async def test_pipelined_mark_holds_the_sqlite_write_lock_only_while_its_statement_runs(
    engine: AsyncEngine, sessions: Sessions
) -> None:
    """Right after the marking UPDATE returns, another writer gets SQLite's write lock at
    once: the mark is committed by then (autocommit), not held open across the thread
    hand-offs and event-loop turns that a transaction's COMMIT would wait for."""
    assert engine.url.database is not None
    other_writer = sqlite3.connect(engine.url.database, timeout=0, isolation_level=None)
    lock_free_after_mark: list[bool] = []

    def probe(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        if statement.lstrip().startswith("UPDATE outbox_messages SET published_at"):
            try:
                other_writer.execute("BEGIN IMMEDIATE")
            except sqlite3.OperationalError:  # database is locked
                lock_free_after_mark.append(False)
            else:
                other_writer.execute("ROLLBACK")
                lock_free_after_mark.append(True)

    sa_event.listen(engine.sync_engine, "after_cursor_execute", probe)
    send = FakeSender()
    relay = OutboxRelay(engine, sessions, send, poll_seconds=30)
    async with running(relay):
        await commit_events(sessions, [event("VitalsAlert")], on_commit=relay.notify)
        await asyncio.wait_for(wait_until_backlog_empty(sessions), timeout=3)
        sa_event.remove(engine.sync_engine, "after_cursor_execute", probe)
        other_writer.close()
    assert lock_free_after_mark == [True]
    rows = await outbox_rows(sessions)
    assert [(r.published_at is not None, r.attempts) for r in rows] == [(True, 1)]


async def test_pipelined_relay_sends_a_row_whose_seq_sqlite_reused_after_pruning(
    engine: AsyncEngine, sessions: Sessions
) -> None:
    """Once everything sent is marked, the relay forgets its last seq: a row that gets
    a reused (lower) seq after published rows were deleted still goes out."""
    first, second = event("VitalsAlert", "pt-1"), event("VitalsAlert", "pt-2")
    send = FakeSender()
    relay = OutboxRelay(engine, sessions, send, poll_seconds=30)
    async with running(relay):
        await commit_events(sessions, [first], on_commit=relay.notify)
        await asyncio.wait_for(wait_until_backlog_empty(sessions), timeout=3)
        async with sessions() as session:
            await session.execute(delete(OutboxMessage))  # a retention job pruned them
            await session.commit()
        await commit_events(sessions, [second], on_commit=relay.notify)
        assert [r.seq for r in await outbox_rows(sessions)] == [1]  # seq 1 again
        await asyncio.wait_for(wait_until_backlog_empty(sessions), timeout=3)
        assert send.event_ids == [str(first.event_id), str(second.event_id)]


async def test_relay_started_later_publishes_what_a_crash_left_behind_and_survives_errors(
    engine: AsyncEngine, sessions: Sessions
) -> None:
    # Committed while no relay ran (the process died between commit and publish).
    events = [event("NotificationSent"), event("NotificationFailed")]
    await commit_events(sessions, events)
    send = FakeSender()
    send.fail_with = ConnectionError("broker restarting")
    relay = OutboxRelay(engine, sessions, send, poll_seconds=0.02)

    async def retried() -> None:  # the loop keeps going after a failed send
        while (await outbox_rows(sessions))[0].attempts < 2:  # noqa: ASYNC110 - polling the database
            await asyncio.sleep(0.01)

    relay.start()
    try:
        await asyncio.wait_for(retried(), timeout=3)
        assert (await outbox_rows(sessions))[0].published_at is None
        send.fail_with = None
        await asyncio.wait_for(send.sent.wait(), timeout=3)
    finally:
        started = time.monotonic()
        await relay.stop(flush_timeout=3)
        assert time.monotonic() - started < 3
    assert send.event_ids == [str(e.event_id) for e in events]
    assert await outbox_backlog(sessions) == (0, None)


# --- rows handed by the commit (pipelined relay) ---------------------------------------------


class OutboxReads:
    """Counts the relay's reads of the outbox (SELECTs of unsent rows)."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.count = 0
        self._engine = engine

    def __enter__(self) -> OutboxReads:
        sa_event.listen(self._engine.sync_engine, "before_cursor_execute", self._seen)
        return self

    def __exit__(self, *_: object) -> None:
        sa_event.remove(self._engine.sync_engine, "before_cursor_execute", self._seen)

    def _seen(self, _conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        if statement.lstrip().startswith("SELECT") and "FROM outbox_messages" in statement:
            self.count += 1


async def test_pipelined_relay_sends_the_rows_a_commit_hands_it_without_reading_them_back(
    engine: AsyncEngine, sessions: Sessions
) -> None:
    """The commit gives the relay its rows with their seqs (`notify(rows)`): when they
    continue the sent sequence, they go out as handed, exactly as stored."""
    first, second = event("VitalsAlert", "pt-1"), event("VitalsAlert", "pt-2")
    send = FakeSender()
    relay = OutboxRelay(engine, sessions, send, poll_seconds=30)
    async with running(relay):
        await commit_events(sessions, [first], on_commit=relay.notify)
        await asyncio.wait_for(wait_until_backlog_empty(sessions), timeout=3)
        with OutboxReads(engine) as reads:
            await commit_events(sessions, [second], on_commit=relay.notify)
            await until(lambda: len(send.event_ids) == 2, timeout=3)
        assert reads.count == 0
        await asyncio.wait_for(wait_until_backlog_empty(sessions), timeout=3)
    stored = await outbox_rows(sessions)
    assert send.event_ids == [str(first.event_id), str(second.event_id)]
    assert send.batches[1] == [
        {
            "event_id": row.event_id,
            "topic": row.topic,
            "key": row.key,
            "headers": row.headers,
            "payload": row.payload,
            "seq": row.seq,
        }
        for row in stored[1:]
    ]
    assert [(r.published_at is not None, r.attempts) for r in stored] == [(True, 1), (True, 1)]


async def test_a_row_nobody_handed_makes_the_relay_read_and_keeps_the_order(
    engine: AsyncEngine, sessions: Sessions
) -> None:
    """A commit that did not hand its row (another writer) leaves a gap before the handed
    row: the relay reads the outbox instead, sends both in seq order, and sends the handed
    row once."""
    first, unhanded, handed = (event("VitalsAlert", f"pt-{n}") for n in range(3))
    send = FakeSender()
    relay = OutboxRelay(engine, sessions, send, poll_seconds=30)
    async with running(relay):
        await commit_events(sessions, [first], on_commit=relay.notify)
        await asyncio.wait_for(wait_until_backlog_empty(sessions), timeout=3)
        await commit_events(sessions, [unhanded])  # no notify: nothing handed
        with OutboxReads(engine) as reads:
            await commit_events(sessions, [handed], on_commit=relay.notify)
            await asyncio.wait_for(wait_until_backlog_empty(sessions), timeout=3)
        assert reads.count >= 1
    assert send.event_ids == [str(e.event_id) for e in (first, unhanded, handed)]


async def test_a_handed_row_whose_send_failed_is_retried_from_the_outbox_in_order(
    engine: AsyncEngine, sessions: Sessions
) -> None:
    first, failed, later = (event("VitalsAlert", f"pt-{n}") for n in range(3))
    send = FakeSender()
    relay = OutboxRelay(engine, sessions, send, poll_seconds=0.05)
    async with running(relay):
        await commit_events(sessions, [first], on_commit=relay.notify)
        await asyncio.wait_for(wait_until_backlog_empty(sessions), timeout=3)
        send.fail_with = ConnectionError("broker restarting")
        await commit_events(sessions, [failed], on_commit=relay.notify)

        async def failure_recorded() -> None:
            while (await outbox_rows(sessions))[1].attempts < 1:  # noqa: ASYNC110 - polling the database
                await asyncio.sleep(0.01)

        await asyncio.wait_for(failure_recorded(), timeout=3)
        row = (await outbox_rows(sessions))[1]
        assert row.published_at is None
        assert row.last_error is not None
        assert "broker restarting" in row.last_error
        send.fail_with = None
        await commit_events(sessions, [later], on_commit=relay.notify)
        await asyncio.wait_for(wait_until_backlog_empty(sessions), timeout=3)
    assert send.event_ids == [str(e.event_id) for e in (first, failed, later)]


async def test_a_failing_broker_gets_backed_off_retries_while_handed_rows_wait(
    engine: AsyncEngine, sessions: Sessions
) -> None:
    """Rows handed while the broker is down must not make the relay retry in a loop: it
    backs off as for any failed send (here 0.1 s, then longer)."""
    send = CountingFailures()
    relay = OutboxRelay(engine, sessions, send, poll_seconds=0.05)
    async with running(relay):
        await commit_events(sessions, [event("VitalsAlert", "pt-1")], on_commit=relay.notify)
        await until(lambda: send.attempts == 1, timeout=3)
        await commit_events(sessions, [event("VitalsAlert", "pt-2")], on_commit=relay.notify)
        await asyncio.sleep(0.5)
    assert 2 <= send.attempts <= 8, send.attempts


class CountingFailures(FakeSender):
    def __init__(self) -> None:
        super().__init__()
        self.attempts = 0
        self.fail_with = ConnectionError("broker down")

    async def __call__(self, rows: Sequence[OutboxRow]) -> None:
        self.attempts += 1
        await super().__call__(rows)


@contextlib.asynccontextmanager
async def running(relay: OutboxRelay) -> AsyncIterator[OutboxRelay]:
    """The relay's task started for the block, stopped (flushing, bounded) after it."""
    relay.start()
    try:
        yield relay
    finally:
        await relay.stop(flush_timeout=3)
