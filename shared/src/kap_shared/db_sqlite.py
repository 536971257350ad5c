"""SQLite engine set-up: WAL, and one writer at a time per process, queued in the
event loop.

SQLite lets one connection write at a time. When a second connection of the pool
wants to write, SQLite's busy handler *sleeps* (1, 2, 5 ... 100 ms steps) and polls
again, so a handful of concurrent writers (HTTP requests, the outbox relay, the vitals
consumer) spend their time asleep instead of queueing: issue 13 measured a p99 of
seconds at 40 writes/s. Here a connection takes this process's writer lock (an
`asyncio.Lock`) just before its first writing statement and gives it back when its
transaction ends (commit, rollback, or the connection returning to the pool): the
span for which SQLite holds its write lock anyway. Writers wait in the event loop,
in order, and wake up the moment the lock is free; reads take no lock (WAL).

The transaction itself starts at that first writing statement (pysqlite's implicit
BEGIN comes just before it), so it begins with the lock held. Other processes on
the same file (a CLI, a migration) still meet SQLite's busy timeout.

The queue is per database *file*: every engine of this process on the same file shares
it. Statements run inline on the event loop (`kap_shared.db_sqlite_cursor`), so a
writer that reached SQLite's busy handler while another engine of the same process
held the write lock would block the loop, and with it the holder's commit.
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
import weakref
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, event
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.pool import PoolProxiedConnection
from sqlalchemy.util.concurrency import await_, in_greenlet

from .db_sqlite_checkpoint import WAL_FILE_LIMIT_BYTES, Checkpointer, Observers, SqliteObserver
from .db_sqlite_cursor import inline_connect_args, use_inline_statements

# How long a writer waits for the lock (and SQLite for another process's), seconds.
BUSY_TIMEOUT = 30.0
# Statements that never write; anything else (DML, DDL, BEGIN, SAVEPOINT, WITH ...)
# takes the lock: holding it needlessly is slow, missing it would be the sleep again.
_READS = ("SELECT", "PRAGMA", "EXPLAIN")
_HELD = "kap_writer_lock"
# Each connection's page cache, KiB (SQLite's default is 2,000). A vitals batch of
# 5,000 readings dirties ~1,200 pages (~5 MB) (the readings table and its two indexes, one
# insertion point per session in each): with the default cache SQLite spills dirty
# pages to the WAL in mid-transaction and reads them back (bench/README.md, vitals
# round 6). Memory is taken as pages are read, up to this much per connection.
CACHE_KIB = 16_384


def _reads_only(statement: str) -> bool:
    return statement.lstrip()[:7].upper().startswith(_READS)


class WriterQueue:
    """This process's SQLite writer lock, one per event loop (tests run several)."""

    def __init__(
        self, timeout: float = BUSY_TIMEOUT, checkpointer: Checkpointer | None = None
    ) -> None:
        self.timeout = timeout
        # with one, WAL checkpoints run on a worker thread (kap_shared.db_sqlite_checkpoint)
        self.checkpointer = checkpointer
        # told how long writers waited, and each checkpoint pass (the same set)
        self.observers: Observers = (
            checkpointer.observers if checkpointer is not None else weakref.WeakSet()
        )
        self._locks: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Lock] = (
            weakref.WeakKeyDictionary()
        )

    def _lock(self) -> asyncio.Lock:
        loop = asyncio.get_running_loop()
        lock = self._locks.get(loop)
        if lock is None:
            lock = self._locks[loop] = asyncio.Lock()
        return lock

    def _loop_lock(self) -> asyncio.Lock | None:
        """The running loop's lock; None for a synchronous caller (a CLI)."""
        try:
            return self._lock()
        except RuntimeError:
            return None

    def watch(self, observer: SqliteObserver) -> None:
        """Tell `observer` (held weakly) how long writers wait and checkpoints take."""
        self.observers.add(observer)

    async def _acquire(self, lock: asyncio.Lock) -> None:
        started = time.perf_counter()
        try:
            async with asyncio.timeout(self.timeout):
                await lock.acquire()
        except TimeoutError:
            # What SQLite itself says when its busy timeout runs out.
            raise sqlite3.OperationalError("database is locked") from None
        finally:
            if self.observers:
                waited = time.perf_counter() - started
                for observer in self.observers:
                    observer.writer_waited(waited)

    def before_write(self, info: dict[Any, Any], statement: str) -> None:
        """Take the lock before a connection's first writing statement (in the
        greenlet SQLAlchemy's asyncio API runs the statement in)."""
        if _HELD in info or _reads_only(statement) or not in_greenlet():
            return
        lock = self._lock()
        await_(self._acquire(lock))
        info[_HELD] = lock

    @staticmethod
    def release(info: dict[Any, Any]) -> None:
        """The transaction ended (or the connection is gone): next writer, please."""
        lock = info.pop(_HELD, None)
        if lock is not None:
            lock.release()

    def _release_connection(self, connection: Any) -> None:
        # A pooled connection's `info` is its record's; the dialect's first-connect
        # check passes a bare one (with no `info`), which never holds the lock.
        try:
            info = connection.info
        except (AttributeError, NotImplementedError):
            return
        self.release(info)

    def install(self, engine: AsyncEngine) -> None:
        sync_engine = engine.sync_engine
        _INSTALLED[sync_engine] = self
        dialect = sync_engine.dialect
        commit, rollback = dialect.do_commit, dialect.do_rollback

        # SQLAlchemy has no event *after* a commit or rollback (its `commit` event runs
        # before it): the dialect's own calls are wrapped. Both receive the pool's
        # proxied connection, whose `info` is the connection's.
        def do_commit(connection: PoolProxiedConnection) -> None:
            try:
                commit(connection)
            finally:
                self._release_connection(connection)
            if self.checkpointer is not None:
                self.checkpointer.after_commit(self._loop_lock())

        def do_rollback(connection: PoolProxiedConnection) -> None:
            try:
                rollback(connection)
            finally:
                self._release_connection(connection)

        dialect.do_commit = do_commit  # type: ignore[method-assign,assignment]
        dialect.do_rollback = do_rollback  # type: ignore[method-assign,assignment]

        @event.listens_for(sync_engine, "before_cursor_execute")
        def _before(conn, _cursor, statement, _params, _context, _many):  # type: ignore[no-untyped-def]
            self.before_write(conn.connection.info, statement)

        @event.listens_for(sync_engine.pool, "checkin")
        def _checkin(_dbapi_connection, record):  # type: ignore[no-untyped-def]
            self.release(record.info)

        @event.listens_for(sync_engine.pool, "invalidate")
        def _invalidate(_dbapi_connection, record, _exception):  # type: ignore[no-untyped-def]
            self.release(record.info)


# One writer queue per database file in this process (see the module's docstring).
_QUEUES: weakref.WeakValueDictionary[str, WriterQueue] = weakref.WeakValueDictionary()
# The queue each configured engine uses (a private one for `:memory:`, or one given).
_INSTALLED: weakref.WeakKeyDictionary[Engine, WriterQueue] = weakref.WeakKeyDictionary()


def writer_queue_of(engine: AsyncEngine) -> WriterQueue:
    """The writer queue of the engine's database file, shared by its engines (the one
    it was configured with, once it is)."""
    installed = _INSTALLED.get(engine.sync_engine)
    if installed is not None:
        return installed
    database = engine.url.database
    if not database or database == ":memory:" or database.startswith("file:"):
        return WriterQueue()  # private to the connection (or a URI: not worth resolving)
    key = str(Path(database).resolve())
    queue = _QUEUES.get(key)
    if queue is None:
        queue = _QUEUES[key] = WriterQueue(checkpointer=Checkpointer(key, BUSY_TIMEOUT))
    return queue


def configure_sqlite(engine: AsyncEngine, writers: WriterQueue | None = None) -> None:
    """WAL, the pragmas every connection needs, statements inline, the writer queue."""

    @event.listens_for(engine.sync_engine, "do_connect")
    def _connect_args(_dialect, _record, _cargs, cparams):  # type: ignore[no-untyped-def]
        inline_connect_args(cparams)

    # the engine's listeners hold the queue: it lives (in _QUEUES too) while they do
    queue = writers or writer_queue_of(engine)

    @event.listens_for(engine.sync_engine, "connect")
    def _sqlite_pragmas(dbapi_connection, _record):  # type: ignore[no-untyped-def]
        use_inline_statements(dbapi_connection)
        # WAL lets readers (the outbox relay, GETs) read while a handler writes.
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA cache_size=-{CACHE_KIB}")
        if queue.checkpointer is not None:  # checkpoints off the event loop
            cursor.execute("PRAGMA wal_autocheckpoint=0")
            # a WAL that starts over is overwritten, not cut (the checkpointer's docstring)
            cursor.execute(f"PRAGMA journal_size_limit={WAL_FILE_LIMIT_BYTES}")
        cursor.close()

    queue.install(engine)
