"""The alert path's architectural floor: the same two broker hops, two durable
transactions and a stream push, with no platform code around them.

The alert benchmark's single round trip (one produce -> consume) is the broker's floor.
The alert path cannot come near it: by design it crosses the broker twice (the reading,
then the VitalsAlert), writes two SQLite transactions (monitoring's reading with its
outbox row, notifications' inbox claim with its notification) and pushes over an HTTP
stream. This module runs exactly that and nothing else, as two processes:

* `first` (monitoring's minimum): consumes `IN_TOPIC`; per record, in one transaction
  inserts the reading and its outbox row;
  after the commit sends the record on to `OUT_TOPIC` (the services' producer settings)
  and marks the outbox row once the broker acknowledged it; commits the consumer's
  offset (awaited, as the services do) before the next record.
* `second` (notifications' minimum): consumes `OUT_TOPIC`; per record, in one
  transaction, claims its id in an inbox table (primary key) and inserts a
  notification; after the commit writes `data: <key>` to every connected stream
  client (a bare HTTP/1.1 response, `text/event-stream`); commits the offset.

No validation, no rules, no routing, no framework: the guarantees (durable before the
offset commit, outbox before publish, a claimed inbox) and nothing more. The database is
the run's: SQLite files (WAL, synchronous=NORMAL, statements on the event loop, as the
services) or PostgreSQL through asyncpg (the services' driver), a database per stage. The alert
benchmark starts both beside the platform and interleaves a marker with its critical
readings and floor probes (`bench/alert_latency.py`, `pipeline_floor_ms`), so the
platform's latency can be set beside what this architecture costs on the same machine
in the same minutes.

Run by the benchmark as `python bench/pipeline_floor.py first|second ...`.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import re
import sqlite3
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any, Protocol

import asyncpg
import httpx
import uvloop
from aiokafka import AIOKafkaConsumer, TopicPartition

from benchlib import create_topics, services_producer

IN_TOPIC = "bench.pipeline.readings.v1"
OUT_TOPIC = "bench.pipeline.alerts.v1"
GROUP = "bench-pipeline"

_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS readings (id TEXT PRIMARY KEY, body BYTEA NOT NULL)",
    "CREATE TABLE IF NOT EXISTS outbox (seq {serial} PRIMARY KEY, key TEXT NOT NULL, "
    "body BYTEA NOT NULL, published_at DOUBLE PRECISION)",
    "CREATE TABLE IF NOT EXISTS inbox (id TEXT PRIMARY KEY)",
    "CREATE TABLE IF NOT EXISTS notifications (id {serial} PRIMARY KEY, key TEXT NOT NULL, "
    "body BYTEA NOT NULL, created_at DOUBLE PRECISION NOT NULL)",
)
_MARK = "UPDATE outbox SET published_at = $1 WHERE seq = $2"
Statement = tuple[str, Sequence[Any]]  # PostgreSQL's numbered parameters ($1, $2, ...)


class Store(Protocol):
    async def transaction(self, statements: Sequence[Statement]) -> Any:
        """Run `statements` in one transaction; the last one's first column, if any."""

    async def mark(self, seq: int) -> None: ...


class SqliteStore:
    """A file in WAL mode, synchronous=NORMAL, statements on the event loop."""

    def __init__(self, path: str) -> None:
        self.db = sqlite3.connect(path, isolation_level=None)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=NORMAL")
        for statement in _SCHEMA:
            self.db.execute(statement.format(serial="INTEGER"))

    async def transaction(self, statements: Sequence[Statement]) -> Any:
        self.db.execute("BEGIN IMMEDIATE")
        for sql, values in statements:
            row = self.db.execute(_qmarks(sql), values).fetchone()
        self.db.execute("COMMIT")
        return row[0] if row else None

    async def mark(self, seq: int) -> None:
        self.db.execute(_qmarks(_MARK), (time.time(), seq))


def _qmarks(sql: str) -> str:
    """sqlite3's positional `?` for PostgreSQL's `$n`."""
    return re.sub(r"\$\d+", "?", sql)


class PostgresStore:
    """asyncpg: one connection for the transactions, one for the marks (which run
    beside the next record's transaction, as the services' relay marks beside them)."""

    def __init__(self, writer: asyncpg.Connection, marker: asyncpg.Connection) -> None:
        self.writer, self.marker = writer, marker

    @classmethod
    async def connect(cls, url: str) -> PostgresStore:
        writer, marker = await asyncpg.connect(url), await asyncpg.connect(url)
        for statement in _SCHEMA:
            await writer.execute(statement.format(serial="BIGSERIAL"))
        return cls(writer, marker)

    async def transaction(self, statements: Sequence[Statement]) -> Any:
        async with self.writer.transaction():
            for sql, values in statements:
                row = await self.writer.fetchrow(sql, *values)
        return row[0] if row else None

    async def mark(self, seq: int) -> None:
        await self.marker.execute(_MARK, time.time(), seq)


async def _store(database: str) -> Store:
    if database.startswith("postgresql://"):
        return await PostgresStore.connect(database)
    return SqliteStore(database)


async def _consumer(bootstrap: str, topic: str) -> AIOKafkaConsumer:
    # aiokafka's defaults, as the services' subscribers; offsets committed by hand.
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        group_id=f"{GROUP}-{topic}",
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    await consumer.start()
    return consumer


async def first(bootstrap: str, database: str) -> None:
    store = await _store(database)
    marks: set[asyncio.Task[None]] = set()
    producer = services_producer(bootstrap)
    await producer.start()
    consumer = await _consumer(bootstrap, IN_TOPIC)

    def mark(seq: int) -> None:
        task = asyncio.create_task(store.mark(seq))
        marks.add(task)
        task.add_done_callback(marks.discard)

    async for record in consumer:
        key, body = (record.key or b"").decode(), record.value or b""
        seq = await store.transaction(
            [
                ("INSERT INTO readings VALUES ($1, $2)", (key, body)),
                ("INSERT INTO outbox (key, body) VALUES ($1, $2) RETURNING seq", (key, body)),
            ]
        )
        sent = await producer.send(OUT_TOPIC, body, key=key.encode())
        sent.add_done_callback(lambda _, seq=seq: mark(seq))
        partition = TopicPartition(record.topic, record.partition)
        await consumer.commit({partition: record.offset + 1})


async def second(bootstrap: str, database: str, port: int) -> None:
    store = await _store(database)
    clients: set[asyncio.StreamWriter] = set()

    async def stream(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while (await reader.readline()) not in (b"\r\n", b"\n", b""):
            pass  # the request's line and headers
        writer.write(
            b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\n"
            b"cache-control: no-cache\r\nconnection: close\r\n\r\n: connected\n\n"
        )
        clients.add(writer)
        with contextlib.suppress(ConnectionError):
            await reader.read()  # until the client goes
        clients.discard(writer)

    server = await asyncio.start_server(stream, "127.0.0.1", port)
    consumer = await _consumer(bootstrap, OUT_TOPIC)
    async with server:
        async for record in consumer:
            key = record.key or b""
            await store.transaction(
                [
                    ("INSERT INTO inbox VALUES ($1)", (f"{record.partition}-{record.offset}",)),
                    (
                        "INSERT INTO notifications (key, body, created_at) VALUES ($1, $2, $3)",
                        (key.decode(), record.value or b"", time.time()),
                    ),
                ]
            )
            event = b"data: " + key + b"\n\n"
            for client in clients:
                client.write(event)
            partition = TopicPartition(record.topic, record.partition)
            await consumer.commit({partition: record.offset + 1})


class PipelineFloor:
    """Both stages as processes of their own, and the benchmark's side of them: markers
    in, arrivals on the stream out."""

    def __init__(
        self, bootstrap: str, databases: Sequence[str], port: int, partitions: int
    ) -> None:
        """`databases`: the first and the second stage's (a SQLite file's path or a
        PostgreSQL URL each)."""
        self.bootstrap, self.databases = bootstrap, databases
        self.port, self.partitions = port, partitions
        self.processes: list[subprocess.Popen[bytes]] = []

    async def create_topics(self) -> None:
        await create_topics(self.bootstrap, [IN_TOPIC, OUT_TOPIC], self.partitions)

    def start(self) -> None:
        script, common = str(Path(__file__)), ["--bootstrap", self.bootstrap]
        for stage, url in zip(("first", "second"), self.databases, strict=True):
            database = ["--database", url]
            port = ["--port", str(self.port)] if stage == "second" else []
            command = [sys.executable, script, stage, *common, *database, *port]
            self.processes.append(subprocess.Popen(command))

    @property
    def pids(self) -> list[int]:
        return [process.pid for process in self.processes if process.poll() is None]

    async def arrivals(self, connected: asyncio.Event) -> AsyncIterator[tuple[str, float]]:
        """(marker key, arrival time) for each marker that comes out of the stream."""
        deadline = time.monotonic() + 60
        while True:  # the second stage's server may not listen yet
            try:
                async with (
                    httpx.AsyncClient(timeout=httpx.Timeout(10, read=None)) as http,
                    http.stream("GET", f"http://127.0.0.1:{self.port}/") as stream,
                ):
                    async for line in stream.aiter_lines():
                        if line.startswith(":"):
                            connected.set()
                        elif line.startswith("data:"):
                            yield line.partition(":")[2].strip(), time.time()
                    return
            except httpx.TransportError:
                if time.monotonic() > deadline:
                    raise
                await asyncio.sleep(0.2)

    def stop(self) -> None:
        for process in self.processes:
            process.terminate()
        for process in self.processes:
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("stage", choices=("first", "second"))
    parser.add_argument("--bootstrap", required=True)
    parser.add_argument("--database", required=True, help="a SQLite path or a PostgreSQL URL")
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args()
    stage = (
        first(args.bootstrap, args.database)
        if args.stage == "first"
        else second(args.bootstrap, args.database, args.port)
    )
    # uvloop, as the services run under uvicorn.
    with (
        contextlib.suppress(KeyboardInterrupt),
        asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner,
    ):
        runner.run(stage)


if __name__ == "__main__":
    main()
