"""SQLite's writers queue in the event loop (kap_shared.db_sqlite), not in SQLite's
sleeping busy handler: each engine here has SQLite's own busy timeout at 0, so a
writer that reached SQLite while another transaction held the write lock would fail
at once with "database is locked"."""

from __future__ import annotations

import asyncio
import gc
import itertools
import sqlite3
import threading
from collections.abc import AsyncIterator, Callable, Coroutine
from contextlib import asynccontextmanager, closing
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiosqlite
import pytest
from sqlalchemy import event, text
from sqlalchemy.exc import OperationalError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from kap_shared import db_sqlite_checkpoint
from kap_shared.db import create_engine
from kap_shared.db_sqlite import CACHE_KIB, WriterQueue, configure_sqlite, writer_queue_of

# Bounds a wrong implementation's deadlock (the test then fails); never reached otherwise.
GUARD_SECONDS = 20.0


def _refusing_at_once(database: Path, writers: WriterQueue | None = None) -> AsyncEngine:
    """An engine as the services configure it, except that SQLite's own busy timeout is
    0 for its statements. It is set after the connection's pragmas: a new connection's
    `PRAGMA journal_mode=WAL` may meet another connection's commit (about once in a
    hundred runs), and SQLite's busy handler retries that."""
    engine = create_async_engine(f"sqlite+aiosqlite:///{database}")
    configure_sqlite(engine, writers)

    @event.listens_for(engine.sync_engine, "connect")
    def _refuse_at_once(dbapi_connection, _record):  # type: ignore[no-untyped-def]
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA busy_timeout=0")
        cursor.close()

    return engine


@pytest.fixture
async def engine(tmp_path: Path) -> AsyncIterator[AsyncEngine]:
    engine = _refusing_at_once(tmp_path / "w.db", WriterQueue(timeout=GUARD_SECONDS))
    async with engine.begin() as conn:
        await conn.execute(text("CREATE TABLE t (n INTEGER)"))
    try:
        yield engine
    finally:
        await engine.dispose()


async def _count(engine: AsyncEngine) -> int:
    async with engine.connect() as conn:
        return int((await conn.execute(text("SELECT count(*) FROM t"))).scalar_one())


async def test_every_connection_gets_wal_normal_sync_and_the_larger_page_cache(
    engine: AsyncEngine,
) -> None:
    """The durability the README promises (WAL, synchronous=NORMAL: a commit survives a
    process crash) on every pooled connection, and the page cache a vitals batch's dirty
    pages fit in (negative: KiB)."""
    async with engine.connect() as first, engine.connect() as second:
        for conn in (first, second):
            pragmas = [
                (await conn.execute(text(f"PRAGMA {name}"))).scalar()
                for name in ("journal_mode", "synchronous", "cache_size")
            ]
            assert pragmas == ["wal", 1, -CACHE_KIB]


async def test_concurrent_writers_queue_instead_of_failing(engine: AsyncEngine) -> None:
    """Twenty transactions at once, each with several statements (so each holds the
    write lock across awaits): without the queue, SQLite refuses the overlapping ones."""

    async def writer(n: int) -> None:
        async with engine.begin() as conn:
            await conn.execute(text("INSERT INTO t VALUES (:n)"), {"n": n})
            await conn.execute(text("SELECT count(*) FROM t"))
            await conn.execute(text("INSERT INTO t VALUES (:n)"), {"n": -n})

    await asyncio.gather(*(writer(n) for n in range(1, 21)))
    assert await _count(engine) == 40


async def test_the_lock_is_given_back_at_commit_not_when_the_connection_closes(
    engine: AsyncEngine,
) -> None:
    async with engine.connect() as held:
        await held.execute(text("INSERT INTO t VALUES (1)"))
        await held.commit()
        # `held` is still checked out: another writer must not wait for it.
        async with engine.begin() as conn:
            await conn.execute(text("INSERT INTO t VALUES (2)"))
    assert await _count(engine) == 2


async def test_a_rolled_back_or_failed_transaction_gives_the_lock_back(
    engine: AsyncEngine,
) -> None:
    async def failing_handler() -> None:
        async with engine.begin() as conn:
            await conn.execute(text("INSERT INTO t VALUES (1)"))
            raise RuntimeError("the handler failed")

    with pytest.raises(RuntimeError):
        await failing_handler()
    async with engine.begin() as conn:
        await conn.execute(text("INSERT INTO t VALUES (2)"))
    assert await _count(engine) == 1


async def test_readers_do_not_wait_for_a_writer(engine: AsyncEngine) -> None:
    async with engine.begin() as writer:
        await writer.execute(text("INSERT INTO t VALUES (1)"))
        assert await _count(engine) == 0  # WAL: the committed state, at once


async def test_a_writer_that_cannot_get_the_lock_fails_closed(tmp_path: Path) -> None:
    """A writer nested inside another's transaction can never get the lock: it fails
    as SQLite would ("database is locked") once the queue's timeout runs out."""
    engine = _refusing_at_once(tmp_path / "n.db", WriterQueue(timeout=0.2))
    try:
        async with engine.begin() as conn:
            await conn.execute(text("CREATE TABLE t (n INTEGER)"))
        async with engine.begin() as outer:
            await outer.execute(text("INSERT INTO t VALUES (1)"))
            async with engine.begin() as nested:
                with pytest.raises(OperationalError, match="database is locked"):
                    await nested.execute(text("INSERT INTO t VALUES (2)"))
    finally:
        await engine.dispose()


async def test_statements_commit_and_rollback_take_no_thread_hand_off(
    engine: AsyncEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """kap_shared.db_sqlite_cursor: statements, commit and rollback run on the event
    loop's thread (no aiosqlite hand-off); rows, rowcount and lastrowid as sqlite3 gives
    them, and a rollback undoes what it should."""
    hand_offs: list[object] = []
    real = aiosqlite.Connection._execute

    async def counting(self: aiosqlite.Connection, fn: Any, *args: Any, **kwargs: Any) -> Any:
        hand_offs.append(fn)
        return await real(self, fn, *args, **kwargs)  # type: ignore[no-untyped-call]

    async with engine.connect() as conn:
        monkeypatch.setattr(aiosqlite.Connection, "_execute", counting)
        await conn.execute(text("INSERT INTO t VALUES (:n)"), [{"n": 1}, {"n": 2}, {"n": 3}])
        inserted = await conn.execute(text("INSERT INTO t VALUES (4)"))
        updated = await conn.execute(text("UPDATE t SET n = n + 10 WHERE n > 2"))
        rows = (await conn.execute(text("SELECT n FROM t ORDER BY n"))).all()
        await conn.commit()
        await conn.execute(text("INSERT INTO t VALUES (99)"))
        await conn.rollback()
        assert hand_offs == []
        monkeypatch.undo()
    assert inserted.lastrowid == 4
    assert updated.rowcount == 2
    assert [n for (n,) in rows] == [1, 2, 13, 14]
    assert await _count(engine) == 4  # the rolled-back 99 is not there


class _PutSpy:
    """Stands in for an aiosqlite connection's request queue, recording every hand-off."""

    def __init__(self, queue: Any) -> None:
        self.queue = queue
        self.puts: list[object] = []

    def put_nowait(self, item: object) -> None:
        self.puts.append(item)
        self.queue.put_nowait(item)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.queue, name)


async def test_an_autocommit_connection_sets_and_resets_its_isolation_level_inline(
    engine: AsyncEngine,
) -> None:
    """The outbox marker's AUTOCOMMIT: no hand-off to aiosqlite's thread to set the
    isolation level nor to reset it when the connection goes back to the pool, and the
    statement is committed without a COMMIT."""
    async with engine.connect() as conn:
        driver = (await conn.get_raw_connection()).driver_connection
        assert driver is not None
        spy = _PutSpy(driver._tx)
        driver._tx = spy
        alone = await conn.execution_options(isolation_level="AUTOCOMMIT")
        await alone.execute(text("INSERT INTO t VALUES (7)"))
    driver._tx = spy.queue
    assert spy.puts == []
    assert await _count(engine) == 1
    async with engine.connect() as conn:  # back in its default mode: a transaction again
        await conn.execute(text("INSERT INTO t VALUES (8)"))
        await conn.rollback()
    assert await _count(engine) == 1


class Heard:
    """An observer of a writer queue and its checkpoints, as a service's metrics are
    (`kap_sqlite_writer_wait_seconds`, `kap_sqlite_checkpoint_seconds`)."""

    def __init__(self) -> None:
        self.waits: list[float] = []
        self.passes: list[tuple[str, float]] = []

    def writer_waited(self, seconds: float) -> None:
        self.waits.append(seconds)

    def checkpoint_pass(self, kind: str, seconds: float) -> None:
        self.passes.append((kind, seconds))


async def test_observers_hear_how_long_each_writer_waited_for_the_lock(
    engine: AsyncEngine,
) -> None:
    """Each writing transaction tells how long it waited for the writer lock: the first
    at once, the second for as long as the first held it. Observers are held weakly (a
    service's metrics go with the service)."""
    queue = writer_queue_of(engine)
    heard = Heard()
    queue.watch(heard)
    holding = 0.3

    async def second() -> None:
        async with engine.begin() as conn:
            await conn.execute(text("INSERT INTO t VALUES (2)"))

    async with engine.begin() as first:
        await first.execute(text("INSERT INTO t VALUES (1)"))
        waiting = asyncio.create_task(second())
        await asyncio.sleep(holding)  # the first holds the lock this long
    await asyncio.wait_for(waiting, GUARD_SECONDS)
    [first_wait, second_wait] = heard.waits
    assert first_wait < holding / 2 <= second_wait
    assert await _count(engine) == 2

    del heard
    gc.collect()
    assert not queue.observers


async def test_engines_on_one_file_share_the_writer_queue(tmp_path: Path) -> None:
    """Statements run on the event loop, so a second engine's writer must queue in the
    loop too: in SQLite's busy handler it would block the loop and the first engine's
    commit with it (here SQLite's own busy timeout is 0: it would fail at once)."""
    engines = [_refusing_at_once(tmp_path / "s.db") for _ in range(2)]
    assert writer_queue_of(engines[0]) is writer_queue_of(engines[1])
    try:
        async with engines[0].begin() as conn:
            await conn.execute(text("CREATE TABLE t (n INTEGER)"))

        async def writer(n: int) -> None:
            async with engines[n % 2].begin() as conn:
                await conn.execute(text("INSERT INTO t VALUES (:n)"), {"n": n})
                await asyncio.sleep(0)  # hold the write lock across a turn of the loop
                await conn.execute(text("INSERT INTO t VALUES (:n)"), {"n": -n})

        await asyncio.gather(*(writer(n) for n in range(1, 11)))
        assert await _count(engines[1]) == 20
    finally:
        for each in engines:
            await each.dispose()


Ran = list[tuple[int, tuple[int, int, int]]]  # thread, (busy, frames, copied)


def _record_checkpoints(monkeypatch: pytest.MonkeyPatch, wal_bytes: int) -> Ran:
    """Checkpoints as they run (no minimum interval; a checkpoint once the WAL holds
    `wal_bytes`): the thread each ran on and what SQLite answered."""
    ran: Ran = []
    real = db_sqlite_checkpoint.checkpoint

    def recording(database: str, timeout: float, mode: str = "PASSIVE") -> tuple[int, int, int]:
        outcome = real(database, timeout, mode)
        ran.append((threading.get_ident(), outcome))
        return outcome

    monkeypatch.setattr(db_sqlite_checkpoint, "checkpoint", recording)
    monkeypatch.setattr(db_sqlite_checkpoint, "INTERVAL_SECONDS", 0.0)
    monkeypatch.setattr(db_sqlite_checkpoint, "WAL_BYTES", wal_bytes)
    return ran


def _size(path: Path) -> int:
    return path.stat().st_size


def _index(wal: Path) -> db_sqlite_checkpoint.WalIndex:
    """What the WAL holds since it last started over, and what is left to copy."""
    return db_sqlite_checkpoint.wal_index(f"{str(wal).removesuffix('-wal')}-shm")


def _checkpointed(
    database: Path,
) -> tuple[AsyncEngine, Path, db_sqlite_checkpoint.Checkpointer]:
    """An engine as the services configure it, its WAL file and its checkpointer."""
    engine = create_async_engine(f"sqlite+aiosqlite:///{database}")
    configure_sqlite(engine)
    checkpointer = writer_queue_of(engine).checkpointer
    assert checkpointer is not None
    return engine, Path(f"{database}-wal"), checkpointer


async def _checkpoints_done(ran: Ran, checkpointer: db_sqlite_checkpoint.Checkpointer) -> None:
    for _ in range(200):  # poll: the checkpoints run on a worker thread
        if ran and not checkpointer.running:
            return
        await asyncio.sleep(0.05)


async def test_a_checkpoint_waits_for_the_wal_to_fill_and_the_wal_then_starts_over_in_place(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A checkpoint that empties the WAL makes the next commit start it over: small
    commits leave the WAL alone; past `WAL_BYTES` a checkpoint runs, and the commit
    after it starts the WAL over from its beginning. The file is overwritten, not cut:
    cutting it cost the commit that started it over (on the event loop) 20-60 ms under
    load (bench/README.md, round 22)."""
    threshold = 256 * 1024
    ran = _record_checkpoints(monkeypatch, threshold)
    engine, wal, checkpointer = _checkpointed(tmp_path / "w.db")
    try:
        async with engine.begin() as conn:
            await conn.execute(text("CREATE TABLE t (b BLOB)"))
        for n in range(3):
            async with engine.begin() as conn:
                await conn.execute(text("INSERT INTO t VALUES (:n)"), {"n": n})
        # none started (it would be running, or done): the WAL is below the threshold
        assert not checkpointer.running
        assert ran == []
        assert 0 < _index(wal).waiting == _index(wal).length < threshold

        async with engine.begin() as conn:
            await conn.execute(
                text("INSERT INTO t VALUES (randomblob(:size))"), {"size": threshold}
            )
        await _checkpoints_done(ran, checkpointer)
        [(_, (busy, frames, copied))] = ran
        assert busy == 0
        assert copied == frames > threshold // 4096
        assert _index(wal).waiting == 0
        grown = _size(wal)

        async with engine.begin() as conn:  # the WAL starts over, in the same file
            await conn.execute(text("INSERT INTO t VALUES (1)"))
        assert 0 < _index(wal).waiting == _index(wal).length < threshold
        assert _size(wal) == grown > threshold
        assert await _count(engine) == 5
        assert len(ran) == 1
        assert not checkpointer.running
    finally:
        await engine.dispose()


async def test_the_wal_index_says_what_sqlite_itself_reports(tmp_path: Path) -> None:
    """`wal_index` reads SQLite's wal-index (the `-shm` file): its frames and what is
    copied must be what `PRAGMA wal_checkpoint` answers, and nothing without a WAL."""
    database = tmp_path / "i.db"
    shm = f"{database}-shm"
    assert db_sqlite_checkpoint.wal_index(shm) == db_sqlite_checkpoint.WalIndex(0, 0)
    with closing(sqlite3.connect(database, isolation_level=None)) as writer:
        writer.execute("PRAGMA journal_mode=WAL")
        writer.execute("PRAGMA wal_autocheckpoint=0")
        writer.execute("CREATE TABLE t (b BLOB)")
        for _ in range(5):
            writer.execute("INSERT INTO t VALUES (randomblob(10000))")
        page = writer.execute("PRAGMA page_size").fetchone()[0]
        written = db_sqlite_checkpoint.wal_index(shm)
        with closing(sqlite3.connect(database, isolation_level=None)) as other:
            _, frames, copied = other.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
        copied_all = db_sqlite_checkpoint.wal_index(shm)
    frame = page + 24
    assert frames > 5 * 10000 // page  # the blobs' overflow pages, at least
    assert written == db_sqlite_checkpoint.WalIndex(length=frames * frame, waiting=frames * frame)
    assert copied == frames
    assert copied_all == db_sqlite_checkpoint.WalIndex(length=frames * frame, waiting=0)


async def test_checkpoints_run_on_a_worker_thread_not_in_a_commit(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """kap_shared.db_sqlite_checkpoint: the event loop's connections never checkpoint
    (wal_autocheckpoint=0: a checkpoint's fsyncs would stall every request in flight);
    after commits a PASSIVE checkpoint runs on a worker thread and empties the WAL.
    PASSIVE copies what it can while writers go on (a commit during it leaves frames for
    the next one), so "every frame copied" is asked of a checkpoint that ran alone."""
    ran = _record_checkpoints(monkeypatch, wal_bytes=0)
    engine = create_async_engine(f"sqlite+aiosqlite:///{tmp_path / 'c.db'}")
    configure_sqlite(engine)
    checkpointer = writer_queue_of(engine).checkpointer
    assert checkpointer is not None
    try:
        async with engine.begin() as conn:
            autocheckpoint = (await conn.execute(text("PRAGMA wal_autocheckpoint"))).scalar()
            await conn.execute(text("CREATE TABLE t (n INTEGER)"))

        for n in range(20):
            async with engine.begin() as conn:
                await conn.execute(text("INSERT INTO t VALUES (:n)"), {"n": n})
        await _checkpoints_done(ran, checkpointer)
        during_writes = len(ran)
        async with engine.begin() as conn:  # one more commit, then no writer
            await conn.execute(text("INSERT INTO t VALUES (20)"))
        await _checkpoints_done(ran, checkpointer)
    finally:
        await engine.dispose()
    assert autocheckpoint == 0
    assert during_writes > 0
    assert len(ran) == during_writes + 1
    assert threading.get_ident() not in {thread for thread, _ in ran}
    # never more copied than there was. A pass during the writes may answer busy: PASSIVE
    # gives up without waiting when it cannot take a lock it needs, e.g. when it reads the
    # WAL's header while a commit rewrites it (seen once in CI on a loaded machine)
    assert all(copied <= frames for _, (_, frames, copied) in ran)
    # the one that ran alone was not busy and copied every frame it found, and there were
    _, (busy, frames, copied) = ran[-1]
    assert busy == 0
    assert copied == frames > 0
    assert any(frames > 0 for _, (_, frames, _) in ran)


def _blob_writer(engine: AsyncEngine) -> Callable[[int], Coroutine[Any, Any, None]]:
    """Commits one row of `size` random bytes into `t`."""

    async def write(size: int) -> None:
        async with engine.begin() as conn:
            await conn.execute(text("INSERT INTO t VALUES (randomblob(:size))"), {"size": size})

    return write


async def _blob_table(engine: AsyncEngine) -> None:
    async with engine.begin() as conn:
        await conn.execute(text("CREATE TABLE t (b BLOB)"))


# A checkpoint pass held open by a test: (it copied, let it go, the mode it ran in).
HeldPass = tuple[threading.Event, threading.Event, list[str]]


def _held_open(monkeypatch: pytest.MonkeyPatch, count: int) -> list[HeldPass]:
    """Each of the next `count` checkpoint passes, once it copied, says so and waits to
    be let go: (copied, resume, its mode)."""
    recording = db_sqlite_checkpoint.checkpoint
    passes: list[HeldPass] = [(threading.Event(), threading.Event(), []) for _ in range(count)]
    taken = itertools.count()

    def held_open(database: str, timeout: float, mode: str = "PASSIVE") -> tuple[int, int, int]:
        outcome = recording(database, timeout, mode)
        copied, resume, modes = passes[next(taken)]
        modes.append(mode)
        copied.set()
        resume.wait(GUARD_SECONDS)
        return outcome

    monkeypatch.setattr(db_sqlite_checkpoint, "checkpoint", held_open)
    return passes


async def _until_copied(passes: list[HeldPass], number: int) -> None:
    for _ in range(200):  # poll: the passes run on a worker thread
        if passes[number][0].is_set():
            return
        await asyncio.sleep(0.01)
    pytest.fail(f"checkpoint pass {number} never ran")


@dataclass
class HeldRun:
    """An engine whose next checkpoint passes are held open (`_held_passes`)."""

    ran: Ran
    passes: list[HeldPass]
    engine: AsyncEngine
    wal: Path
    checkpointer: db_sqlite_checkpoint.Checkpointer
    write: Callable[[int], Coroutine[Any, Any, None]]


@asynccontextmanager
async def _held_passes(
    database: Path, monkeypatch: pytest.MonkeyPatch, threshold: int, count: int
) -> AsyncIterator[HeldRun]:
    """A blob table on an engine as the services configure it, a checkpoint once the WAL
    holds `threshold`, its maximum twice that, and the next `count` passes held open
    until the test lets them go (all of them on the way out, whatever happened)."""
    ran = _record_checkpoints(monkeypatch, threshold)
    monkeypatch.setattr(db_sqlite_checkpoint, "WAL_MAX_BYTES", 2 * threshold)
    passes = _held_open(monkeypatch, count)
    engine, wal, checkpointer = _checkpointed(database)
    try:
        await _blob_table(engine)
        yield HeldRun(ran, passes, engine, wal, checkpointer, _blob_writer(engine))
    finally:
        for _, resume, _ in passes:
            resume.set()
        await engine.dispose()


async def test_past_its_maximum_the_wal_is_copied_then_finished_between_writers_and_starts_over(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Under steady writes a PASSIVE checkpoint never finds a moment without a writer, so
    the WAL never starts over (765 MB beside a 29 MB database in the alert benchmark).
    Past `WAL_MAX_BYTES` a first pass copies what it finds while writers go on, and,
    with less than `WAL_LEFT_BYTES` appended meanwhile, a last one holds the process's
    writer lock: a writer that comes meanwhile waits for it instead of appending, the
    last pass copies only what was appended during the first, and the waiting writer's
    commit starts the WAL over. (Holding the lock for the whole copy paused every writer
    20-60 ms a second: bench/README.md, round 13.) Below the maximum writers never wait
    for a checkpoint."""
    threshold = 64 * 1024
    async with _held_passes(tmp_path / "w.db", monkeypatch, threshold, 3) as held:
        ran, passes, engine, wal, write = held.ran, held.passes, held.engine, held.wal, held.write
        heard = Heard()
        held.checkpointer.observers.add(heard)
        await write(3 * threshold)  # past the maximum
        await _until_copied(passes, 0)
        # The first pass holds no lock: a writer appends meanwhile.
        await asyncio.wait_for(write(16), GUARD_SECONDS)
        passes[0][1].set()
        await _until_copied(passes, 1)

        # The last pass copied what was written during the first: nothing is left.
        assert _index(wal).waiting == 0
        assert await _count(engine) == 2
        writer = asyncio.create_task(write(16))
        # A writer nothing held would commit within this window; this one must wait.
        done, _ = await asyncio.wait({writer}, timeout=0.5)
        assert not done
        passes[1][1].set()
        await asyncio.wait_for(writer, GUARD_SECONDS)
        await _checkpoints_done(ran, held.checkpointer)
        # what the service's metrics are told: the locked pass lasted at least the
        # half-second it was held open, and the writer waited for most of it
        assert [kind for kind, _ in heard.passes] == ["unlocked", "locked"]
        assert heard.passes[1][1] >= 0.5
        assert max(heard.waits) >= 0.4
        [(_, first), (_, last)] = ran
        assert [passes[0][2], passes[1][2]] == [["PASSIVE"], ["RESTART"]]
        assert first[0] == last[0] == 0  # never blocked
        assert first[2] == first[1] > 3 * threshold // 4096  # the bulk, without the lock
        assert last[2] == last[1] > 0  # the rest, every frame copied
        # the waiting writer started the WAL over, in the same file
        assert 0 < _index(wal).length < threshold
        assert _size(wal) > 3 * threshold

        await write(threshold)  # past WAL_BYTES, below the maximum: one pass, no lock
        await _until_copied(passes, 2)
        await asyncio.wait_for(write(16), GUARD_SECONDS)  # no wait for that checkpoint
        passes[2][1].set()
        await _checkpoints_done(ran, held.checkpointer)
        assert len(ran) == 3
        assert passes[2][2] == ["PASSIVE"]
        assert heard.passes[2][0] == "passive"


async def test_writers_go_on_while_more_than_a_little_is_left_to_copy(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The pass that holds the writers copies only a little: while writers appended
    `WAL_LEFT_BYTES` or more during a pass, another pass runs without the lock, and
    they go on writing. (One pass before the lock and a TRUNCATE under it held the
    monitoring batches behind the alert benchmark's p99 18-100 ms: bench/README.md,
    round 22.) The passes without the lock are bounded, writers may outrun them."""
    threshold = 64 * 1024
    monkeypatch.setattr(db_sqlite_checkpoint, "WAL_LEFT_BYTES", threshold)
    monkeypatch.setattr(db_sqlite_checkpoint, "UNLOCKED_PASSES", 2)
    async with _held_passes(tmp_path / "w.db", monkeypatch, threshold, 3) as held:
        ran, passes, engine, wal, write = held.ran, held.passes, held.engine, held.wal, held.write
        await write(3 * threshold)  # past the maximum
        await _until_copied(passes, 0)
        await asyncio.wait_for(write(threshold), GUARD_SECONDS)  # the limit: not a little
        passes[0][1].set()
        await _until_copied(passes, 1)
        # a second pass without the lock: a writer commits during it, and again more
        # than a little, but that was the last pass without the lock
        await asyncio.wait_for(write(2 * threshold), GUARD_SECONDS)
        passes[1][1].set()
        await _until_copied(passes, 2)
        writer = asyncio.create_task(write(16))
        done, _ = await asyncio.wait({writer}, timeout=0.5)
        assert not done  # the third pass holds the writers
        passes[2][1].set()
        await asyncio.wait_for(writer, GUARD_SECONDS)
        await _checkpoints_done(ran, held.checkpointer)
        assert [modes for _, _, modes in passes] == [["PASSIVE"], ["PASSIVE"], ["RESTART"]]
        assert all(busy == 0 and copied == frames for _, (busy, frames, copied) in ran)
        assert 0 < _index(wal).length < threshold  # and the WAL started over
        assert await _count(engine) == 4


async def test_a_reader_stops_the_last_pass_after_its_copy_instead_of_holding_writers(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The last pass makes the WAL start over, which SQLite does only once no reader
    uses it. It has no busy handler: with one, it would wait (up to 30 s) for readers
    while it holds the writer lock, and a reader of this process may be a transaction
    about to wait for that lock. A reader makes it stop after its copy; once the reader
    is gone, the next checkpoint finishes the job and the WAL starts over."""
    threshold = 64 * 1024
    ran = _record_checkpoints(monkeypatch, threshold)
    monkeypatch.setattr(db_sqlite_checkpoint, "WAL_MAX_BYTES", 2 * threshold)
    engine, wal, checkpointer = _checkpointed(tmp_path / "w.db")
    write = _blob_writer(engine)

    try:
        await _blob_table(engine)
        with closing(sqlite3.connect(tmp_path / "w.db", isolation_level=None)) as reader:
            reader.execute("BEGIN")
            reader.execute("SELECT count(*) FROM t").fetchone()  # holds its snapshot
            await write(3 * threshold)  # past the maximum: the reader holds the copy back
            await _checkpoints_done(ran, checkpointer)
            assert not checkpointer.running  # the last pass did not wait for the reader
            *unlocked, (_, (busy, _, _)) = ran
            assert busy == 1
            assert 1 <= len(unlocked) <= db_sqlite_checkpoint.UNLOCKED_PASSES
            assert _index(wal).waiting > 2 * threshold  # not copied under the reader
            reader.execute("COMMIT")
        await write(16)  # the reader is gone: the next checkpoint completes
        ran.clear()
        await _checkpoints_done(ran, checkpointer)
        assert ran[-1][1][0] == 0
        await write(16)
        assert 0 < _index(wal).length < threshold
    finally:
        await engine.dispose()


async def test_the_connection_used_last_is_used_next_so_its_page_cache_stays_warm(
    tmp_path: Path,
) -> None:
    """SQLite drops a connection's whole page cache when another connection committed
    since it last read: handing out the pool's connections in turn (the pool's default)
    made every transaction start cold under load. `kap_shared.db.create_engine` hands
    out the one used last."""
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'l.db'}")

    async def connection_of(conn: AsyncConnection) -> object:
        raw = await conn.get_raw_connection()
        return raw.dbapi_connection

    try:
        async with engine.begin() as conn:
            await conn.execute(text("CREATE TABLE t (n INTEGER)"))
        async with engine.connect() as first, engine.connect() as second:  # two in the pool
            pooled = {id(await connection_of(first)), id(await connection_of(second))}
        assert len(pooled) == 2
        used = []
        for n in range(4):
            async with engine.begin() as conn:
                await conn.execute(text("INSERT INTO t VALUES (:n)"), {"n": n})
                used.append(id(await connection_of(conn)))
        assert len(set(used)) == 1
        assert used[0] in pooled
    finally:
        await engine.dispose()
