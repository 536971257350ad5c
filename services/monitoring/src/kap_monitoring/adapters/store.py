"""Set-based database operations for the vitals hot path (Core statements, not
the ORM: one statement per batch instead of one object per reading).

Every use case that changes a session first *locks* it with `lock_sessions` (or
`lock_and_load_sessions`, which reads it in the same statement): an UPDATE that bumps
its version. On PostgreSQL that takes the row locks; on SQLite it takes the database's
write lock before anything is read (SQLite's driver only opens the transaction at the
first write, so a read-then-write would otherwise race). Either way two writers never
interleave on one session, whichever path (HTTP, topic batch, event handler, timer) they
come from.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol, TypeVar, cast

import msgspec
from sqlalchemy import insert
from sqlalchemy import select as sa_select
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from kap_shared.db import planned_for_each_execution
from kap_shared.events.envelope import as_utc
from kap_shared.events.monitoring import VITAL_METRICS

from ..domain.vitals import Reading as DomainReading
from ..domain.vitals import micros
from .tables import OPEN, Alert, MonitoredSession, readings_table

T = TypeVar("T")
# Bound parameters per statement stay well below SQLite's and asyncpg's limits.
CHUNK = 500


def chunks(items: Sequence[T], size: int = CHUNK) -> Iterator[Sequence[T]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


async def lock_sessions(session: AsyncSession, session_ids: Iterable[str]) -> None:
    await _lock(session, sorted(set(session_ids)), returning=False)


async def lock_and_load_sessions(
    session: AsyncSession, session_ids: Iterable[str]
) -> dict[str, SessionRow]:
    """`lock_sessions` that also reads the locked rows, in the lock's own statement
    (SQLite: the UPDATE's RETURNING; PostgreSQL: the ordered SELECT ... FOR UPDATE):
    the sessions a batch or an HTTP reading works on, as `SessionRow`s by id (unknown
    ids absent)."""
    sqlite = (await session.connection()).dialect.name == "sqlite"
    rows = await _lock(session, sorted(set(session_ids)), returning=True)
    return {row.session_id: row for row in (_session_row(values, sqlite) for values in rows)}


async def _lock(
    session: AsyncSession, ids: Sequence[str], *, returning: bool
) -> list[Sequence[Any]]:
    """Bump the sessions' versions (`ids` sorted: no lock-order deadlocks); with
    `returning`, the rows' SESSION_ROW_COLUMNS as the lock read them."""
    connection = await session.connection()
    paramstyle = connection.dialect.paramstyle
    postgres = connection.dialect.name == "postgresql"
    table = MonitoredSession.__tablename__
    read = ", ".join(SESSION_ROW_COLUMNS) if returning else "session_id"
    rows: list[Sequence[Any]] = []
    for part in chunks(ids):
        where = f"WHERE session_id IN ({_placeholders(paramstyle, len(part))})"
        if postgres:
            # An UPDATE ... IN (...) locks rows in its scan's (physical) order, not the
            # list's: two instances whose batches share sessions (a rebalance hands a
            # partition over mid-batch) deadlocked in bench/vitals_throughput.py
            # --scale 1,2. Rows locked in key order first never form a cycle.
            locked = await connection.exec_driver_sql(
                f"SELECT {read} FROM {table} {where} ORDER BY session_id FOR UPDATE",  # noqa: S608
                tuple(part),
            )
            rows.extend(locked)
        bump = f"UPDATE {table} SET version = version + 1 {where}"  # noqa: S608 - fixed names
        if returning and not postgres:
            rows.extend(await connection.exec_driver_sql(f"{bump} RETURNING {read}", tuple(part)))
        else:
            await connection.exec_driver_sql(bump, tuple(part))
    return rows if returning else []


@dataclass(slots=True)
class SessionRow:
    """The columns of monitored_sessions the vitals path reads (a plain object: the
    ORM would cost more per row than the rules themselves)."""

    session_id: str
    patient_id: str
    site_id: str
    correlation_id: str
    phase: str
    status: str
    first_dose_at: datetime | None
    predose_decision_pending: bool
    predose_decision: str | None
    bp_check_done: bool
    rule_state: dict[str, Any]


SESSION_ROW_COLUMNS = (
    "session_id",
    "patient_id",
    "site_id",
    "correlation_id",
    "phase",
    "status",
    "first_dose_at",
    "predose_decision_pending",
    "predose_decision",
    "bp_check_done",
    "rule_state",
)


def _session_row(values: Sequence[Any], sqlite: bool) -> SessionRow:
    """A SessionRow from SESSION_ROW_COLUMNS' values as the driver hands them back."""
    row = SessionRow(*values)
    row.predose_decision_pending = bool(row.predose_decision_pending)
    row.bp_check_done = bool(row.bp_check_done)
    if sqlite:  # the driver hands back SQLite's storage types
        if row.first_dose_at is not None:
            row.first_dose_at = _sqlite_parse(row.first_dose_at)
        if isinstance(row.rule_state, str):
            row.rule_state = decode_json(row.rule_state)
    elif row.first_dose_at is not None:
        row.first_dose_at = as_utc(row.first_dose_at)
    return row


async def _select_in(
    session: AsyncSession, query: str, values: Sequence[str], size: int = CHUNK
) -> list[Sequence[Any]]:
    """The rows of `query` + ` IN (values)`, in plain SQL (no ORM rows to build for
    thousands of values a batch), one statement per chunk of `size` values."""
    connection = await session.connection()
    paramstyle = connection.dialect.paramstyle
    rows: list[Sequence[Any]] = []
    for part in chunks(values, size):
        statement = f"{query} IN ({_placeholders(paramstyle, len(part))})"
        rows.extend(await connection.exec_driver_sql(statement, tuple(part)))
    return rows


def _sqlite_parse(value: str | datetime) -> datetime:
    if isinstance(value, datetime):
        return as_utc(value)
    return datetime.fromisoformat(value).replace(tzinfo=UTC)


# SQLite: the batch's ids as ONE JSON array, each looked up in the primary key with
# json_each as the outer loop. Half the instructions of an `IN (?, ...)` list of bound
# values (callgrind: ~3,200 against ~6,900 a reading; bench/README.md, vitals round 7),
# and one statement text, prepared once, whatever the batch's size.
_SQLITE_EXISTING = (
    f"SELECT r.reading_id, r.session_id FROM json_each(?) AS j "  # noqa: S608 - fixed names
    f"JOIN {readings_table.name} AS r ON r.reading_id = j.value"
)


async def existing_readings(session: AsyncSession, reading_ids: Sequence[str]) -> dict[str, str]:
    """reading_id -> session_id of the readings already stored (plain SQL, nothing to
    convert). Only the rare paths ask: readings refused for their session, and a batch
    whose insert stored fewer rows than it sent (`insert_readings`)."""
    connection = await session.connection()
    if connection.dialect.name == "sqlite":
        found = await connection.exec_driver_sql(_SQLITE_EXISTING, (encode_json(reading_ids),))
        return dict(cast("list[tuple[str, str]]", found.all()))
    query = f"SELECT reading_id, session_id FROM {readings_table.name} WHERE reading_id"  # noqa: S608
    async with planned_for_each_execution(connection):  # not a plan cached when it was empty
        pairs = cast("list[tuple[str, str]]", await _select_in(session, query, reading_ids, 1000))
    return dict(pairs)


async def open_alerts(session: AsyncSession, session_ids: Iterable[str]) -> list[Alert]:
    """The sessions' open alerts (few): their ids in plain SQL, then the ORM rows.

    `status = 'open'` is written as a literal, the partial index's own condition: SQLite
    re-prepares a statement on every execution when a bound value is compared with a
    partial index's WHERE (the value might change the plan), ~10x a prepared lookup."""
    query = (
        f"SELECT alert_id FROM {Alert.__tablename__} "  # noqa: S608 - fixed names
        f"WHERE status = '{OPEN}' AND session_id"
    )
    rows = await _select_in(session, query, sorted(set(session_ids)))
    alert_ids = [alert_id for (alert_id,) in rows]
    if not alert_ids:
        return []
    found = await session.exec(select(Alert).where(col(Alert.alert_id).in_(alert_ids)))
    return list(found)


async def session_alerts(
    session: AsyncSession, session_id: str, rules: Sequence[str]
) -> list[Alert]:
    result = await session.exec(
        select(Alert)
        .where(Alert.session_id == session_id)
        .where(col(Alert.rule_id).in_(list(rules)))
        .order_by(col(Alert.triggered_at))
    )
    return list(result)


class NewReading(Protocol):
    """What a reading to store carries (handlers.vitals.Incoming)."""

    @property
    def reading(self) -> DomainReading: ...
    @property
    def session_id(self) -> str: ...
    @property
    def recorded_at(self) -> datetime: ...
    @property
    def source(self) -> str: ...
    @property
    def event_id(self) -> str | None: ...


# The readings table's columns, in the order of the rows `insert_readings` builds; the
# metrics in the contract's order (VITAL_METRICS, the one list of them).
INSERT_COLUMNS = (
    "reading_id",
    "session_id",
    "recorded_at",
    *VITAL_METRICS,
    "symptoms",
    "dissociation",
    "cadss_total",
    "source",
    "event_id",
    "received_at",
)


_PG_TYPES = (
    "varchar",
    "varchar",
    "timestamptz",
    "int",
    "int",
    "int",
    "float8",
    "int",
    "int",
    "text",
    "varchar",
    "int",
    "varchar",
    "varchar",
    "timestamptz",
)
_PG_SELECT = ", ".join(f"c{n}::json" if t == "text" else f"c{n}" for n, t in enumerate(_PG_TYPES))
_PG_ARRAYS = ", ".join(f"${n + 1}::{t}[]" for n, t in enumerate(_PG_TYPES))
_PG_NAMES = ", ".join(f"c{n}" for n in range(len(_PG_TYPES)))
_PG_UNNEST_INSERT = (
    f"INSERT INTO readings ({', '.join(INSERT_COLUMNS)}) "  # noqa: S608 - fixed names
    f"SELECT {_PG_SELECT} FROM unnest({_PG_ARRAYS}) AS u({_PG_NAMES}) "
    "ON CONFLICT (reading_id) DO NOTHING RETURNING reading_id"
)
_SQLITE_INSERT = (
    f"INSERT INTO readings ({', '.join(INSERT_COLUMNS)}) "  # noqa: S608 - fixed names
    f"VALUES ({', '.join('?' * len(INSERT_COLUMNS))}) ON CONFLICT (reading_id) DO NOTHING"
)
# The batch's ids that were stored before its insert: SQLite gives the rows an insert
# adds the rowids after the table's largest, one by one, and no other writer inserts
# while this transaction holds the write lock, so the batch's own rows are the last
# `inserted` rowids and every row at or below the bound was there before.
_SQLITE_STORED_BEFORE = f"{_SQLITE_EXISTING} WHERE r.rowid <= ?"


# A session's rule state, read and written once per batch: msgspec's JSON is a few
# times faster than the standard library's both ways, and the same JSON to any reader.
decode_json = msgspec.json.decode


def encode_json(value: Any) -> str:
    return msgspec.json.encode(value).decode()


def sqlite_datetime(value: datetime) -> str:
    """SQLAlchemy's SQLite storage format for UTC datetimes (always 6 fractional digits),
    so rows written here compare and read back exactly like the ORM's."""
    text = value.isoformat(" ", "microseconds")
    if text.endswith("+00:00"):  # already UTC (what the contract's timestamps are)
        return text[:-6]
    return value.astimezone(UTC).replace(tzinfo=None).isoformat(" ", "microseconds")


def sqlite_datetimes(values: Sequence[datetime]) -> list[str]:
    """`sqlite_datetime` of each value, a batch at a time: msgspec writes the UTC ones as
    RFC 3339 text in one C call ("2026-12-02T03:04:05.123456Z", or no fraction when it is
    zero), which needs only re-punctuating. Any other takes `sqlite_datetime` itself (an
    offset, a naive value; msgspec rounds an offset to whole minutes, so its "Z" alone
    does not prove UTC)."""
    texts: list[str] = msgspec.json.decode(msgspec.json.encode(values))
    return [
        (
            text[:10] + " " + text[11:26]
            if len(text) == 27
            else text[:10] + " " + text[11:19] + ".000000"
        )
        if value.tzinfo is UTC
        else sqlite_datetime(value)
        for text, value in zip(texts, values, strict=True)
    ]


def _placeholders(paramstyle: str, count: int) -> str:
    if paramstyle == "qmark":
        return ", ".join("?" * count)
    if paramstyle == "numeric_dollar":
        return ", ".join(f"${n}" for n in range(1, count + 1))
    if paramstyle == "numeric":
        return ", ".join(f":{n}" for n in range(1, count + 1))
    return ", ".join(["%s"] * count)


async def insert_readings(
    session: AsyncSession, readings: Sequence[NewReading], received_at: datetime
) -> dict[str, str]:
    """Insert the readings whose reading_id is not stored yet, and return reading_id ->
    session_id of those that were (not inserted: a device's retry, MON-READING-1's
    reused id). The primary key settles repeats in the insert itself (`ON CONFLICT DO
    NOTHING`), so a batch of new readings costs no look-up beforehand; only a batch
    that had repeats reads which they were. One executemany of prepared tuples: this
    skips SQLAlchemy's per-row parameter processing (several times the cost of the
    insert itself) by formatting the only non-trivial types (datetimes, the JSON list)
    here."""
    if not readings:
        return {}
    connection = await session.connection()
    dialect = connection.dialect
    if dialect.name not in ("sqlite", "postgresql"):  # pragma: no cover - other databases
        return await _insert_readings_core(session, readings, received_at)
    sqlite = dialect.name == "sqlite"
    received = sqlite_datetime(received_at) if sqlite else _utc(received_at)
    recorded = [n.recorded_at for n in readings]
    recorded_at = sqlite_datetimes(recorded) if sqlite else [_utc(at) for at in recorded]
    dumps = json.dumps
    rows = [
        (
            r.reading_id,
            n.session_id,
            at,
            r.bp_systolic,
            r.bp_diastolic,
            r.heart_rate,
            r.spo2,
            r.respiratory_rate,
            r.sedation_moaas,
            dumps(list(r.symptoms)) if r.symptoms else "[]",
            r.dissociation,
            r.cadss_total,
            n.source,
            n.event_id,
            received,
        )
        for n, at in zip(readings, recorded_at, strict=True)
        for r in (n.reading,)
    ]
    if not sqlite:
        # One statement with one array per column: asyncpg's executemany would send a
        # round of protocol messages per row, several times slower.
        columns = list(zip(*rows, strict=True))
        added = await connection.exec_driver_sql(_PG_UNNEST_INSERT, tuple(list(c) for c in columns))
        new = {reading_id for (reading_id,) in added}
        if len(new) == len(rows):
            return {}
        return await existing_readings(session, [r[0] for r in rows if r[0] not in new])
    inserted = 0
    for part in chunks(rows, 5000):
        inserted += (await connection.exec_driver_sql(_SQLITE_INSERT, list(part))).rowcount
    if inserted == len(rows):
        return {}
    ids = encode_json([r[0] for r in rows])
    if inserted == 0:
        found = await connection.exec_driver_sql(_SQLITE_EXISTING, (ids,))
    else:
        last = (await connection.exec_driver_sql("SELECT last_insert_rowid()")).scalar_one()
        found = await connection.exec_driver_sql(_SQLITE_STORED_BEFORE, (ids, last - inserted))
    return dict(cast("list[tuple[str, str]]", found.all()))


def _utc(value: datetime) -> datetime:
    return value.astimezone(UTC)


async def _insert_readings_core(
    session: AsyncSession, readings: Sequence[NewReading], received_at: datetime
) -> dict[str, str]:  # pragma: no cover - databases other than SQLite and PostgreSQL
    stored = await existing_readings(session, [n.reading.reading_id for n in readings])
    rows = [
        {
            "reading_id": n.reading.reading_id,
            "session_id": n.session_id,
            "recorded_at": n.recorded_at,
            "bp_systolic": n.reading.bp_systolic,
            "bp_diastolic": n.reading.bp_diastolic,
            "heart_rate": n.reading.heart_rate,
            "spo2": n.reading.spo2,
            "respiratory_rate": n.reading.respiratory_rate,
            "sedation_moaas": n.reading.sedation_moaas,
            "symptoms": list(n.reading.symptoms),
            "dissociation": n.reading.dissociation,
            "cadss_total": n.reading.cadss_total,
            "source": n.source,
            "event_id": n.event_id,
            "received_at": received_at,
        }
        for n in readings
        if n.reading.reading_id not in stored
    ]
    for part in chunks(rows, 2000):
        await session.exec(insert(readings_table), params=part)
    return stored


# What replaying a session's rules needs of its stored readings (DomainReading's order).
READING_COLUMNS = ("reading_id", "recorded_at", *VITAL_METRICS)


async def session_readings(session: AsyncSession, session_id: str) -> list[DomainReading]:
    """All of a session's readings (for re-deriving rules after a late reading)."""
    columns = [readings_table.c[name] for name in READING_COLUMNS]
    result = await session.exec(
        sa_select(*columns).where(readings_table.c.session_id == session_id)  # type: ignore[call-overload]
    )
    return [
        DomainReading(rid, micros(as_utc(at)), sys_, dia, hr, spo2, rr, sed)
        for rid, at, sys_, dia, hr, spo2, rr, sed in result
    ]


async def bp_recorded_between(
    session: AsyncSession, session_id: str, start: datetime, end: datetime
) -> bool:
    result = await session.exec(  # type: ignore[call-overload]
        sa_select(readings_table.c.reading_id)
        .where(readings_table.c.session_id == session_id)
        .where(readings_table.c.bp_systolic.is_not(None))
        .where(readings_table.c.recorded_at.between(start, end))
        .limit(1)
    )
    return result.first() is not None


async def save_session_states(session: AsyncSession, changes: Sequence[StateChange]) -> None:
    """Write each session's rule state and flags in one executemany (prepared tuples,
    as for the readings)."""
    if not changes:
        return
    connection = await session.connection()
    dialect = connection.dialect
    sqlite = dialect.name == "sqlite"
    when: Callable[[datetime], Any] = sqlite_datetime if sqlite else _utc
    rows = [
        (
            encode_json(c.rule_state),
            int(c.pending) if sqlite else c.pending,
            c.decision,
            int(c.bp_check_done) if sqlite else c.bp_check_done,
            c.new_readings,
            when(c.updated_at),
            c.session_id,
        )
        for c in changes
    ]
    marks = _placeholders(dialect.paramstyle, 7).split(", ")
    statement = (
        f"UPDATE {MonitoredSession.__tablename__} SET rule_state = {marks[0]}, "  # noqa: S608
        f"predose_decision_pending = {marks[1]}, predose_decision = {marks[2]}, "
        f"bp_check_done = {marks[3]}, reading_count = reading_count + {marks[4]}, "
        f"updated_at = {marks[5]} WHERE session_id = {marks[6]}"
    )
    await connection.exec_driver_sql(statement, rows)


@dataclass(slots=True)
class StateChange:
    session_id: str
    rule_state: dict[str, Any]
    pending: bool
    decision: str | None
    bp_check_done: bool
    new_readings: int
    updated_at: datetime
