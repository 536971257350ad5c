"""One thread hand-off per SQLite statement instead of four.

aiosqlite runs each connection in a thread of its own, and SQLAlchemy's adapter awaits
it four times per query: create a cursor, execute, fetch the rows, close the cursor.
Every hand-off is a queue put, a GIL switch, a wake-up of the event loop through its
self-pipe and a future: in issue 13's profile, ~40 of them per HTTP request cost more
main-thread time than the SQL. This cursor does the four steps in one call on the
connection's thread and keeps the rows (what SQLAlchemy's adapter does next anyway:
it reads every row of a non-streaming result at once).

It is swapped in per connection (`use_one_hop_cursors`), for SQLAlchemy's regular
cursors only; streaming (server-side) cursors keep aiosqlite's own.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Sequence
from typing import Any

import aiosqlite
from sqlalchemy.dialects.sqlite.aiosqlite import (
    AsyncAdapt_aiosqlite_connection,
    AsyncAdapt_aiosqlite_cursor,
)

_Outcome = tuple[Any, int, int | None, list[Any]]  # description, rowcount, lastrowid, rows


def _run(connection: aiosqlite.Connection, many: bool, operation: str, parameters: Any) -> _Outcome:
    """On the connection's thread: execute, read every row, close."""
    cursor: sqlite3.Cursor = connection._conn.cursor()
    try:
        if many:
            cursor.executemany(operation, parameters)
        else:
            cursor.execute(operation, parameters)
        rows = cursor.fetchall() if cursor.description else []
        return cursor.description, cursor.rowcount, cursor.lastrowid, rows
    finally:
        cursor.close()


class OneHopCursor:
    """The part of aiosqlite's Cursor that SQLAlchemy's adapter uses."""

    arraysize = 1

    def __init__(self, connection: aiosqlite.Connection) -> None:
        self._connection = connection
        self.description: Any = None
        self.rowcount = -1
        self.lastrowid: int | None = None
        self._rows: list[Any] = []

    async def _execute(self, many: bool, operation: str, parameters: Any) -> OneHopCursor:
        # aiosqlite's own hand-off (private, untyped): the function runs on its thread
        outcome: _Outcome = await self._connection._execute(  # type: ignore[no-untyped-call]
            _run, self._connection, many, operation, parameters
        )
        self.description, self.rowcount, self.lastrowid, self._rows = outcome
        return self

    async def execute(self, operation: str, parameters: Any = None) -> OneHopCursor:
        return await self._execute(False, operation, () if parameters is None else parameters)

    async def executemany(
        self, operation: str, parameters: Iterable[Sequence[Any]]
    ) -> OneHopCursor:
        return await self._execute(True, operation, parameters)

    async def fetchall(self) -> list[Any]:
        rows, self._rows = self._rows, []
        return rows

    async def fetchone(self) -> Any:
        return self._rows.pop(0) if self._rows else None

    async def fetchmany(self, size: int | None = None) -> list[Any]:
        count = size or self.arraysize
        rows, self._rows = self._rows[:count], self._rows[count:]
        return rows

    async def close(self) -> None:
        self._rows = []


class _AdaptedCursor(AsyncAdapt_aiosqlite_cursor):
    __slots__ = ()

    def _make_new_cursor(self, connection: Any) -> Any:
        return OneHopCursor(connection)

    def _aenter_cursor(self, cursor: Any) -> Any:
        return cursor  # nothing to open: no hand-off


class _OneHopConnection(AsyncAdapt_aiosqlite_connection):
    __slots__ = ()
    _cursor_cls = _AdaptedCursor


def use_one_hop_cursors(dbapi_connection: Any) -> None:
    """For the pool's `connect` event: this connection's cursors become OneHopCursors."""
    if type(dbapi_connection) is AsyncAdapt_aiosqlite_connection:
        dbapi_connection.__class__ = _OneHopConnection
