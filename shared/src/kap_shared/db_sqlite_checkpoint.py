"""WAL checkpoints on a worker thread instead of inside a committing request.

Statements run inline on the event loop (`kap_shared.db_sqlite_cursor`), and a commit in
WAL mode with `synchronous=NORMAL` only appends to the WAL: no fsync. The fsyncs come
with checkpoints (copying the WAL back into the database file). SQLite's automatic
checkpoint runs inside whichever commit finds the WAL over 1,000 pages, so that commit,
and with it the event loop and every request in flight, would wait for two fsyncs (3-11
ms each on the bench machine). Here the loop's connections have `wal_autocheckpoint=0`
and, after a commit, at most once per `interval` seconds, a PASSIVE checkpoint runs on
a worker thread through a connection of its own. PASSIVE never waits for readers or
writers (it copies what it can; the next one copies the rest), and SQLite lets writers
append to the WAL while it runs. The last connection to close still checkpoints, as
SQLite always does.

A checkpoint waits until the WAL holds `WAL_BYTES` (about SQLite's own 1,000 pages): once
a checkpoint has copied the whole WAL, the next commit starts the WAL over and SQLite
syncs the new WAL header in that commit, on the event loop. Checkpointing every second
made that a sync in most commits at a clinic's rate (bench/README.md, HTTP round 8); by
size it comes once per ~4 MiB written. The loop's connections truncate the WAL file when
it starts over (`journal_size_limit=0`), so its size on disk is what is waiting to be
copied, read with one `stat` after a commit.

Under a steady stream of writes (a vitals batch every ~30 ms) a PASSIVE checkpoint never
finds a moment without a writer: commits during it leave frames uncopied, the WAL never
starts over, and it grew to 765 MB beside a 29 MB database in a two-minute run of the
alert benchmark (bench/README.md, round 10), every page lookup searching a longer
WAL index. Past `WAL_MAX_BYTES` the checkpoint therefore ends *between* this process's
writers, in two passes. The first, like any other, copies what it finds while writers
go on appending. The second takes their queue's lock (`kap_shared.db_sqlite`), so
nobody appends while it copies what they appended during the first and truncates the
WAL file, and the next commit starts the WAL over. Writers wait in the event loop for
that short second pass only, never in SQLite's busy handler. (One pass under the lock,
copying the whole WAL, paused every writer 17-64 ms once a second under the alert
benchmark's load: every vitals batch slower than 25 ms had waited for it.
bench/README.md, round 13.)
"""

from __future__ import annotations

import asyncio
import os
import sqlite3
import time
from contextlib import closing

import structlog

log = structlog.get_logger(__name__)

INTERVAL_SECONDS = 1.0
WAL_BYTES = 4 * 1024 * 1024
WAL_MAX_BYTES = 4 * WAL_BYTES


def checkpoint(database: str, timeout: float, mode: str = "PASSIVE") -> tuple[int, int, int]:
    """One checkpoint (on a worker thread), PASSIVE unless told: SQLite's (busy, frames
    in the WAL, frames copied into the database)."""
    with closing(sqlite3.connect(database, timeout=timeout)) as connection:
        busy, frames, copied = connection.execute(f"PRAGMA wal_checkpoint({mode})").fetchone()
        return int(busy), int(frames), int(copied)


class Checkpointer:
    """The checkpoints of one database file."""

    def __init__(self, database: str, timeout: float) -> None:
        self.database = database
        self.timeout = timeout
        self.interval = INTERVAL_SECONDS
        self.wal_bytes = WAL_BYTES
        self.wal_max_bytes = WAL_MAX_BYTES
        self._wal = f"{database}-wal"
        self._last = time.monotonic()
        self._running = False
        self._task: asyncio.Task[tuple[int, int, int]] | None = None  # kept while it runs

    def after_commit(self, writers: asyncio.Lock | None = None) -> None:
        """Called after each commit on the event loop: start a checkpoint when one is due;
        between `writers` (the process's writer lock) once the WAL is past its maximum."""
        now = time.monotonic()
        if self._running or now - self._last < self.interval:
            return
        size = self._wal_size()
        if size < self.wal_bytes:
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return  # a synchronous caller (a CLI): SQLite's own rules apply at close
        self._running, self._last = True, now
        future: asyncio.Future[tuple[int, int, int]]
        if writers is not None and size >= self.wal_max_bytes:
            future = self._task = loop.create_task(self._between(writers))
        else:
            future = loop.run_in_executor(None, checkpoint, self.database, self.timeout)
        future.add_done_callback(self._done)

    async def _between(self, writers: asyncio.Lock) -> tuple[int, int, int]:
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(None, checkpoint, self.database, self.timeout)
        async with writers:
            # TRUNCATE also cuts the WAL file to nothing, here on the worker thread; left
            # to the commit that starts the WAL over, that took 7-9 ms for ~23 MiB on the
            # event loop, every coroutine waiting. No busy handler: a reader of this
            # process may be a transaction waiting for the writer lock held here. A
            # reader makes it stop (busy) after what it could copy; a later checkpoint
            # or the commit that starts the WAL over finishes the job, as before.
            return await loop.run_in_executor(None, checkpoint, self.database, 0, "TRUNCATE")

    def _wal_size(self) -> int:
        try:
            return os.stat(self._wal).st_size
        except OSError:  # no WAL file (yet): nothing to copy
            return 0

    @property
    def running(self) -> bool:
        return self._running

    def _done(self, future: asyncio.Future[tuple[int, int, int]]) -> None:
        self._running, self._task = False, None
        if not future.cancelled() and future.exception() is not None:
            # the WAL only grows until the next one succeeds; no data is at stake
            log.warning("sqlite.checkpoint_failed", error=type(future.exception()).__name__)
