"""SQLite statements run inline on the event loop: no thread hand-off at all.

aiosqlite runs each connection in a thread of its own, and SQLAlchemy's adapter awaits
that thread four times per query (create a cursor, execute, fetch, close) and once per
commit or rollback. Every hand-off is a queue put, a GIL switch, a wake-up of the event
loop through its self-pipe and a future. In issue 13's profiles the hand-offs cost more
of the event loop's time than the SQL itself (~11 per HTTP POST, ~8 per GET even after
they were cut to one per statement), and on a loaded machine each one waits for the
worker thread to be scheduled: a writer holding the process's writer queue
(`kap_shared.db_sqlite`) held it across all of those waits.

Here aiosqlite only opens and closes the connection (its thread, its `connect`); every
statement, `commit` and `rollback` calls the `sqlite3` connection directly, on the
event loop's thread. Blocking the loop for a statement is the right trade for SQLite:

* a statement on a local file takes microseconds (the service's are indexed point
  reads and single-row writes): far less than a hand-off, and there is no network;
* a statement never waits for another writer of this process: writers queue in the
  event loop *before* their first writing statement (`kap_shared.db_sqlite`), one
  queue per database file, and readers never wait in WAL mode;
* a commit does not fsync: with `synchronous=NORMAL` in WAL mode SQLite appends to the
  WAL and returns (durable across a process crash; a power cut may lose the last
  transactions, as before). Only checkpoints fsync, and they run on a worker thread
  (`kap_shared.db_sqlite_checkpoint`), not in the committing request.

What still waits: another *process* writing the same file (a CLI, a migration) makes a
writer wait in SQLite's busy handler, now on the loop (bounded by the busy timeout).

The connection is opened with `check_same_thread=False` (aiosqlite's thread creates
it; the loop's thread uses it; never both at once: aiosqlite is only asked to close).
Streaming (server-side) cursors keep aiosqlite's own, awaited ones.
"""

from __future__ import annotations

import collections
import sqlite3
from collections.abc import Callable
from typing import Any, cast

from sqlalchemy.dialects.sqlite.aiosqlite import (
    AsyncAdapt_aiosqlite_connection,
    AsyncAdapt_aiosqlite_cursor,
)
from sqlalchemy.util.concurrency import await_, in_greenlet


async def _nothing() -> None:
    return None


def _seen_awaiting() -> None:
    """SQLAlchemy's `AsyncConnection.execute` insists that a statement awaited something
    (its guard against a sync driver). Awaiting a coroutine that returns at once
    satisfies it: two greenlet switches, no hand-off, no turn of the event loop."""
    if in_greenlet():
        await_(_nothing())


class _InlineCursor(AsyncAdapt_aiosqlite_cursor):
    """SQLAlchemy's adapted cursor over a plain `sqlite3.Cursor`, called directly."""

    __slots__ = ()
    _awaitable_cursor_close = False  # `close` is sqlite3's own, synchronous

    def _make_new_cursor(self, connection: Any) -> Any:
        return connection._conn.cursor()  # aiosqlite's sqlite3.Connection

    def _aenter_cursor(self, cursor: Any) -> Any:
        return cursor

    @property
    def _sqlite(self) -> sqlite3.Cursor:
        return cast("sqlite3.Cursor", self._cursor)

    def execute(self, operation: Any, parameters: Any = None) -> Any:
        _seen_awaiting()
        try:
            cursor = self._sqlite
            cursor.execute(operation, () if parameters is None else parameters)
            if cursor.description:
                # SQLAlchemy reads a non-streaming result whole anyway
                self._rows = collections.deque(cursor.fetchall())
        except Exception as error:
            self._adapt_connection._handle_exception(error)

    def executemany(self, operation: Any, seq_of_parameters: Any) -> Any:
        _seen_awaiting()
        try:
            self._sqlite.executemany(operation, seq_of_parameters)
        except Exception as error:
            self._adapt_connection._handle_exception(error)


class _InlineConnection(AsyncAdapt_aiosqlite_connection):
    __slots__ = ()
    _cursor_cls = _InlineCursor

    def _end_transaction(self, end: Callable[[sqlite3.Connection], None]) -> None:
        if self._connection._connection:
            try:
                end(self._connection._conn)
            except Exception as error:
                self._handle_exception(error)

    def commit(self) -> None:
        self._end_transaction(sqlite3.Connection.commit)

    def rollback(self) -> None:
        self._end_transaction(sqlite3.Connection.rollback)

    # SQLAlchemy's adapter sets the isolation level on aiosqlite's thread (two hand-offs
    # per AUTOCOMMIT use: set, and reset when the connection returns to the pool; the
    # outbox marker's every mark). Set inline, like every statement.
    @property
    def isolation_level(self) -> str | None:
        return cast("str | None", self._connection._conn.isolation_level)

    @isolation_level.setter
    def isolation_level(self, value: str | None) -> None:
        try:
            self._connection._conn.isolation_level = value
        except Exception as error:
            self._handle_exception(error)


def inline_connect_args(parameters: dict[str, Any]) -> None:
    """For the engine's `do_connect` event: the loop's thread may use the connection."""
    parameters["check_same_thread"] = False


def use_inline_statements(dbapi_connection: Any) -> None:
    """For the pool's `connect` event: this connection's statements run inline."""
    if type(dbapi_connection) is AsyncAdapt_aiosqlite_connection:
        dbapi_connection.__class__ = _InlineConnection
