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

A checkpoint waits until the WAL holds `WAL_BYTES` not yet copied (about SQLite's own
1,000 pages): once a checkpoint has copied the whole WAL, the next commit starts the WAL
over and SQLite syncs the new WAL header in that commit, on the event loop.
Checkpointing every second made that a sync in most commits at a clinic's rate
(bench/README.md, HTTP round 8); by size it comes once per ~4 MiB written.

That commit no longer cuts the WAL file: `journal_size_limit` is `WAL_FILE_LIMIT_BYTES`,
far above what the WAL reaches, so SQLite overwrites it from the start instead of
truncating it (strace: an `fdatasync` of the header, and no `ftruncate`). Under the
alert benchmark's load, cutting ~24 MiB held the writers 18-25 ms in a TRUNCATE
checkpoint with nothing left to copy, and a commit that cut it on the event loop took
156 ms (bench/README.md, round 22). The file's size therefore
no longer says what is waiting to be copied; that is read from SQLite's wal-index
(`wal_index`).

Under a steady stream of writes (a vitals batch every ~30 ms) a PASSIVE checkpoint never
finds a moment without a writer: commits during it leave frames uncopied, the WAL never
starts over, and it grew to 765 MB beside a 29 MB database in a two-minute run of the
alert benchmark (bench/README.md, round 10), every page lookup searching a longer
WAL index. Past `WAL_MAX_BYTES` the checkpoint therefore ends *between* this process's
writers. Passes without any lock first copy what they find while writers go on
appending, each what was appended during the one before, until less than
`WAL_LEFT_BYTES` is left (at most `UNLOCKED_PASSES` of them: writers may append faster
than a pass copies). A last pass then takes their queue's lock (`kap_shared.db_sqlite`),
so nobody appends while it copies that remainder, and the next commit starts the WAL over.
Writers wait in the event loop for that short last pass only, never in SQLite's busy
handler. (One pass under the lock, copying the whole WAL, paused every writer 17-64 ms
once a second under the alert benchmark's load, bench/README.md, round 13; one pass
before the lock and a TRUNCATE under it still paused them 18-100 ms, round 22: the
monitoring batches behind the alert benchmark's p99.)
"""

from __future__ import annotations

import asyncio
import sqlite3
import struct
import time
import weakref
from contextlib import closing
from dataclasses import dataclass
from typing import Protocol

import structlog

log = structlog.get_logger(__name__)

INTERVAL_SECONDS = 1.0
WAL_BYTES = 4 * 1024 * 1024
WAL_MAX_BYTES = 4 * WAL_BYTES
# Past WAL_MAX_BYTES: passes without the lock while more than this is left to copy
# (a pass copies it in a few milliseconds), at most UNLOCKED_PASSES of them.
WAL_LEFT_BYTES = 512 * 1024
UNLOCKED_PASSES = 4
# The WAL file is cut back to this when it starts over (PRAGMA journal_size_limit):
# well above what it reaches between checkpoints, so it is normally never cut.
WAL_FILE_LIMIT_BYTES = 4 * WAL_MAX_BYTES

# Each WAL frame is a page and its 24-byte header.
_FRAME_HEADER = 24
# The wal-index (the `-shm` file), in the machine's byte order
# (https://www.sqlite.org/walformat.html, "The WAL-Index Header" and the checkpoint
# information after its two copies): the page size, the WAL's frames (mxFrame), and
# how many of them are copied into the database (nBackfill).
_PAGE_SIZE = struct.Struct("=H")
_FRAMES = struct.Struct("=I")
_PAGE_SIZE_AT, _FRAMES_AT, _COPIED_AT = 14, 16, 96


class SqliteObserver(Protocol):
    """Told how long this process's writers waited for the writer lock and how long each
    checkpoint pass took (a service's metrics, `kap_shared.service.metrics`)."""

    def writer_waited(self, seconds: float) -> None: ...

    def checkpoint_pass(self, kind: str, seconds: float) -> None: ...


# Observers of one database file, held weakly: a service's metrics go with the service.
Observers = weakref.WeakSet[SqliteObserver]
# The kinds of checkpoint pass: below the WAL's maximum, one without any lock; past
# it, passes without the lock, then the last one holding the writers (what they wait for).
PASSIVE, UNLOCKED, LOCKED = "passive", "unlocked", "locked"


@dataclass(frozen=True, slots=True)
class WalIndex:
    """How much the WAL holds since it last started over, and how much of it is still to
    be copied into the database, in bytes."""

    length: int = 0
    waiting: int = 0


def wal_index(shm_path: str) -> WalIndex:
    """Read from the wal-index; an empty one when there is none (no WAL yet). A
    concurrent commit may move the numbers while they are read: they are an estimate
    for deciding when to checkpoint, never used for correctness."""
    try:
        with open(shm_path, "rb") as shm:
            header = shm.read(_COPIED_AT + _FRAMES.size)
    except OSError:
        return WalIndex()
    if len(header) < _COPIED_AT + _FRAMES.size:
        return WalIndex()
    (page_size,) = _PAGE_SIZE.unpack_from(header, _PAGE_SIZE_AT)
    page_size = 65_536 if page_size == 1 else page_size  # how 64 KiB fits in 16 bits
    (frames,) = _FRAMES.unpack_from(header, _FRAMES_AT)
    (copied,) = _FRAMES.unpack_from(header, _COPIED_AT)
    frame = page_size + _FRAME_HEADER
    return WalIndex(length=frames * frame, waiting=max(frames - copied, 0) * frame)


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
        self.observers: Observers = weakref.WeakSet()
        self.interval = INTERVAL_SECONDS
        self.wal_bytes = WAL_BYTES
        self.wal_max_bytes = WAL_MAX_BYTES
        self.wal_left_bytes = WAL_LEFT_BYTES
        self.unlocked_passes = UNLOCKED_PASSES
        self._shm = f"{database}-shm"
        self._last = time.monotonic()
        self._running = False
        self._task: asyncio.Task[tuple[int, int, int]] | None = None  # kept while it runs

    def wal(self) -> WalIndex:
        """What the WAL holds now, and what of it is still to be copied."""
        return wal_index(self._shm)

    def after_commit(self, writers: asyncio.Lock | None = None) -> None:
        """Called after each commit on the event loop: start a checkpoint when one is due;
        between `writers` (the process's writer lock) once the WAL is past its maximum."""
        now = time.monotonic()
        if self._running or now - self._last < self.interval:
            return
        wal = wal_index(self._shm)
        if wal.waiting < self.wal_bytes:
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return  # a synchronous caller (a CLI): SQLite's own rules apply at close
        self._running, self._last = True, now
        if writers is not None and wal.length >= self.wal_max_bytes:
            self._task = loop.create_task(self._between(writers))
        else:
            self._task = loop.create_task(self._pass(PASSIVE, self.timeout))
        self._task.add_done_callback(self._done)

    async def _between(self, writers: asyncio.Lock) -> tuple[int, int, int]:
        for _ in range(self.unlocked_passes):
            await self._pass(UNLOCKED, self.timeout)
            if self.wal().waiting < self.wal_left_bytes:
                break
        async with writers:
            # RESTART copies the rest and makes sure the next writer starts the WAL over.
            # No busy handler: a reader of this process may be a transaction waiting for
            # the writer lock held here. A reader still on an older snapshot makes it stop
            # (busy) after what it could copy; a later checkpoint finishes the job.
            return await self._pass(LOCKED, 0, "RESTART")

    async def _pass(self, kind: str, timeout: float, mode: str = "PASSIVE") -> tuple[int, int, int]:
        """One pass on a worker thread, its duration told to the observers."""
        started = time.perf_counter()
        try:
            return await asyncio.get_running_loop().run_in_executor(
                None, checkpoint, self.database, timeout, mode
            )
        finally:
            seconds = time.perf_counter() - started
            for observer in self.observers:
                observer.checkpoint_pass(kind, seconds)

    @property
    def running(self) -> bool:
        return self._running

    def _done(self, future: asyncio.Task[tuple[int, int, int]]) -> None:
        self._running, self._task = False, None
        if not future.cancelled() and future.exception() is not None:
            # the WAL only grows until the next one succeeds; no data is at stake
            log.warning("sqlite.checkpoint_failed", error=type(future.exception()).__name__)
