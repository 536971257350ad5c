"""Vitals throughput: monitoring's kap.monitoring.vitals.v1 consumer against a bare
aiokafka loop, on a real broker, in the same run.

    uv run python bench/vitals_throughput.py                    # 200k readings, 300 sessions
    uv run python bench/vitals_throughput.py --readings 50000 --profile
    uv run python bench/vitals_throughput.py --database postgres --partitions 6

1. start Kafka from the Maven jars (kap_local.kafka.LocalKafka) and create the topics;
2. open N sessions in a fresh monitoring database through monitoring's own event
   handlers (SessionScheduled + SessionCheckedIn, as scheduling would announce them);
3. pre-fill kap.monitoring.vitals.v1 with valid VitalsRecorded readings for those
   sessions (keyed by patient, a few device retries and a few readings for unknown
   sessions mixed in, ~5 % of sessions with SpO2 dips and tachycardia);
4. (a) baseline: a bare aiokafka consumer (own group) reads the whole topic with
   getmany, touching each value and nothing else;
   (b) monitoring: the service's app (bootstrap.build) is started in-process; its batch
   subscriber consumes the same topic with full validation, rule evaluation,
   persistence (readings, alerts, outbox, rule state) and dead letters;
5. report readings/s for both, the ratio, where monitoring's time goes, and write
   bench/results/vitals_throughput.json.

Not a test: numbers depend on the machine and its load, which are recorded with them.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import cProfile
import importlib.metadata
import io
import json
import multiprocessing
import os
import platform
import pstats
import random
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from fastapi import FastAPI
from pydantic import ValidationError
from sqlalchemy import text

from benchlib import children, cpu_model, cpu_seconds, postmaster_pid
from kap_local.kafka import LocalKafka, ensure_jars, kafka_version
from kap_local.postgres import LocalPostgres
from kap_monitoring.bootstrap import build
from kap_monitoring.config import MonitoringSettings
from kap_monitoring.domain.commands import RecordDose
from kap_monitoring.domain.rules import MonitoringRules
from kap_monitoring.entrypoints.stream import HANDLERS
from kap_monitoring.entrypoints.vitals_batch import VitalsBatchConsumer
from kap_monitoring.handlers.commands import locked_session, record_dose
from kap_shared.auth import Principal
from kap_shared.db import create_engine, session_factory
from kap_shared.events import (
    SessionCheckedIn,
    SessionScheduled,
    TreatmentPlanCreated,
    VitalsRecorded,
    vitals_codec,
)
from kap_shared.events.enums import Agent, Phase, Role, Route
from kap_shared.events.monitoring import VitalsRecordedData
from kap_shared.events.scheduling import (
    SessionCheckedInData,
    SessionScheduledData,
    TreatmentPlanCreatedData,
)
from kap_shared.events.topics import MONITORING_VITALS
from kap_shared.logging import configure_logging
from kap_shared.messaging.consumer import EventConsumer
from kap_shared.messaging.topics_admin import ensure_topics
from kap_shared.messaging.unit_of_work import UnitOfWork
from kap_shared.migrations import migrations_dir, upgrade
from kap_shared.settings import KafkaSettings

RESULTS = Path(__file__).parent / "results" / "vitals_throughput.json"
SITE = "site-bench"
CADENCE_SECONDS = 5  # a bedside monitor publishing every 5 s


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


# -- the data -------------------------------------------------------------------------------


class Sessions:
    def __init__(self, count: int, readings: int) -> None:
        per_session = readings // count
        # Readings end a minute ago; the first dose is given 5 minutes before the first.
        self.first_reading_at = datetime.now(UTC) - timedelta(
            seconds=per_session * CADENCE_SECONDS + 60
        )
        self.dose_at = self.first_reading_at - timedelta(minutes=5)
        self.ids = [f"ses-{i:04d}" for i in range(count)]
        self.patients = {sid: f"pt-{i:04d}" for i, sid in enumerate(self.ids)}
        rng = random.Random(7)
        self.unstable = set(rng.sample(self.ids, max(1, count // 20)))


def opening_events(
    sessions: Sessions,
) -> Iterator[TreatmentPlanCreated | SessionScheduled | SessionCheckedIn]:
    starts = datetime.now(UTC) - timedelta(hours=3)
    for sid in sessions.ids:
        common: dict[str, Any] = {
            "producer": "scheduling",
            "site_id": SITE,
            "patient_id": sessions.patients[sid],
            "correlation_id": f"episode-{sid}",
        }
        # The plan's route: doses must follow it (MON-DOSE-3).
        yield TreatmentPlanCreated(
            **common,
            data=TreatmentPlanCreatedData(
                plan_id=f"plan-{sid}",
                route=Route.IV,
                protocol="iv",
                prescriber_id="rx-1",
                therapist_id="th-1",
                planned_dosing_sessions=6,
            ),
        )
        yield SessionScheduled(
            **common,
            data=SessionScheduledData(
                session_id=sid,
                plan_id=f"plan-{sid}",
                phase=Phase.DOSING,
                sequence=1,
                starts_at=starts,
                ends_at=starts + timedelta(hours=4),
                room_id="room-1",
                therapist_id="th-1",
            ),
        )
        yield SessionCheckedIn(
            **common,
            data=SessionCheckedInData(session_id=sid, phase=Phase.DOSING, checked_in_at=starts),
        )


def readings(
    sessions: Sessions, total: int, rng: random.Random, reading_ids: str = "sequential"
) -> list[tuple[bytes, bytes]]:
    """(key, value) records: each session's readings in time order, sessions interleaved
    as gateways would publish them; 0.5 % device retries (same reading_id, new event),
    0.01 % readings for sessions monitoring does not know.

    `reading_ids`: "sequential" (`<session>-<n>`: each session's ids sort together, so
    the readings' unique index on reading_id has one insertion point per session) or
    "uuid" (random UUIDs, as monitoring's HTTP ingest and most gateways make them:
    every new reading lands on a random page of that index)."""
    per_session = total // len(sessions.ids)
    start = sessions.first_reading_at
    streams: dict[str, list[tuple[bytes, bytes]]] = {}
    for sid in sessions.ids:
        patient = sessions.patients[sid]
        unstable = sid in sessions.unstable
        out = []
        for n in range(per_session):
            at = start + timedelta(seconds=n * CADENCE_SECONDS)
            minute = n * CADENCE_SECONDS / 60
            dip = unstable and 20 <= minute % 60 < 23
            fast = unstable and 40 <= minute % 60 < 47
            data = VitalsRecordedData(
                session_id=sid,
                reading_id=(
                    str(uuid.UUID(int=rng.getrandbits(128), version=4))
                    if reading_ids == "uuid"
                    else f"{sid}-{n:06d}"
                ),
                recorded_at=at,
                bp_systolic=rng.randint(112, 150),
                bp_diastolic=rng.randint(68, 92),
                heart_rate=rng.randint(124, 135) if fast else rng.randint(62, 98),
                spo2=float(rng.randint(88, 91) if dip else rng.randint(95, 99)),
                respiratory_rate=rng.randint(12, 18),
            )
            event = VitalsRecorded(
                producer="gw-bench",
                site_id=SITE,
                patient_id=patient,
                correlation_id=f"gw-{sid}",
                data=data,
            )
            value = event.to_json()
            out.append((patient.encode(), value))
            if rng.random() < 0.005:  # a device retry: a new event, the same reading
                retry = event.model_copy(update={"event_id": uuid.uuid4()})
                out.append((patient.encode(), retry.to_json()))
        streams[sid] = out
    records: list[tuple[bytes, bytes]] = []
    cursors = dict.fromkeys(streams, 0)
    while cursors:
        for sid in list(cursors):
            stream, i = streams[sid], cursors[sid]
            chunk = stream[i : i + 10]
            records.extend(chunk)
            if i + 10 >= len(stream):
                del cursors[sid]
            else:
                cursors[sid] = i + 10
    for n in range(max(1, total // 10_000)):
        stray = VitalsRecorded(
            producer="gw-bench",
            site_id=SITE,
            patient_id="pt-stray",
            correlation_id="gw-stray",
            data=VitalsRecordedData(
                session_id=f"ses-unknown-{n}",
                reading_id=f"stray-{n}",
                recorded_at=start,
                heart_rate=80,
            ),
        )
        records.insert(rng.randrange(len(records)), (b"pt-stray", stray.to_json()))
    return records


async def prefill(bootstrap: str, records: list[tuple[bytes, bytes]]) -> float:
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap, linger_ms=20, max_batch_size=512 * 1024, acks=1
    )
    await producer.start()
    started = time.perf_counter()
    try:
        for key, value in records:
            await producer.send(MONITORING_VITALS, value, key=key)
        await producer.flush()
    finally:
        await producer.stop()
    return time.perf_counter() - started


# -- (a) the baseline -----------------------------------------------------------------------


async def _timed_drain(
    bootstrap: str,
    group: str,
    total: int,
    max_records: int,
    fetch_bytes: int,
    per_value: Callable[[bytes], None],
) -> dict[str, Any]:
    """A bare aiokafka `getmany` loop over the topic (own group, same fetch size as
    monitoring) calling `per_value` on each value; timed from the first batch."""
    consumer = AIOKafkaConsumer(
        MONITORING_VITALS,
        bootstrap_servers=bootstrap,
        group_id=f"{group}-{uuid.uuid4().hex[:6]}",
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        max_partition_fetch_bytes=fetch_bytes,
    )
    await consumer.start()
    seen = 0
    first: float | None = None
    cpu = 0.0
    try:
        while seen < total:
            batches = await consumer.getmany(timeout_ms=100, max_records=max_records)
            for records in batches.values():
                if first is None:
                    first, cpu = time.perf_counter(), time.process_time()
                for record in records:
                    per_value(record.value or b"")
                    seen += 1
        done, cpu = time.perf_counter(), time.process_time() - cpu
    finally:
        await consumer.stop()
    assert first is not None
    return {
        "records": seen,
        "seconds": done - first,
        "rate": seen / (done - first),
        "cpu_seconds": cpu,
        "records_per_cpu_second": seen / cpu,
    }


async def bare_consumer(
    bootstrap: str, total: int, max_records: int, fetch_bytes: int
) -> dict[str, Any]:
    """The baseline: touch each value (its length) and do nothing else."""
    size = 0

    def touch(value: bytes) -> None:
        nonlocal size
        size += len(value)

    result = await _timed_drain(bootstrap, "bench-bare", total, max_records, fetch_bytes, touch)
    return {**result, "bytes": size}


async def contract_consumer(
    bootstrap: str,
    total: int,
    max_records: int,
    fetch_bytes: int,
    validate: Callable[[bytes], object] = vitals_codec.decode,
) -> dict[str, Any]:
    """The second baseline: the same loop, but each value is decoded and validated
    against the contract (straight from bytes) and nothing else is done: what the
    contract costs on its own, so the rest of monitoring's figure is what the platform
    adds (rules, persistence, offsets). By default with the validation monitoring
    uses (`vitals_codec.decode`: the msgspec fast path generated from the model, the
    pydantic model for what it leaves); `PYDANTIC_ONLY` is the model alone."""
    valid = 0

    def check(value: bytes) -> None:
        nonlocal valid
        with contextlib.suppress(ValidationError):
            validate(value)
            valid += 1

    result = await _timed_drain(bootstrap, "bench-contract", total, max_records, fetch_bytes, check)
    return {**result, "valid": valid}


PYDANTIC_ONLY = vitals_codec.ADAPTER.validate_json


# -- (b) monitoring -------------------------------------------------------------------------


async def open_sessions(database_url: str, sessions: Sessions) -> None:
    """Through monitoring's own code: the scheduling events' handlers, then each
    session's first dose (dosing is under way when the readings arrive)."""
    engine = create_engine(database_url)
    factory = session_factory(engine)
    consumer = EventConsumer(group_id="monitoring", sessions=factory, handlers=HANDLERS)
    for event in opening_events(sessions):
        await consumer.handle(event)
    nurse = Principal(sub="rn-bench", role=Role.NURSE, sites=[SITE])
    dose = RecordDose(
        route=Route.IV,
        agent=Agent.KETAMINE,
        dose_mg=35,
        administered_at=sessions.dose_at,
        dosing_ended_at=sessions.dose_at,  # KET-DIS-6: an infusion charts its end
    )
    for sid in sessions.ids:
        async with UnitOfWork(factory) as uow:
            row = await locked_session(uow, sid)
            await record_dose(uow, row, dose, MonitoringRules(), nurse)
    await engine.dispose()


async def monitoring_consumer(
    settings: MonitoringSettings, total: int, expected: tuple[int, int], profile: bool
) -> dict[str, Any]:
    """Run the service until every reading is stored and every stray dead-lettered
    (`expected`); the rate counts each topic record once, even if a rebalance had a
    batch delivered twice."""
    app: FastAPI = build(settings)
    vitals: VitalsBatchConsumer = app.state.vitals_consumer
    profiler = cProfile.Profile() if profile else None
    async with app.router.lifespan_context(app):
        deadline = time.monotonic() + 1800
        while vitals.stats.first_batch_at is None:
            await asyncio.sleep(0.01)
            if time.monotonic() > deadline:
                raise TimeoutError("the vitals consumer never started")
        cpu = time.process_time()  # the whole process: its threads (aiosqlite's) too
        if profiler:
            profiler.enable()
        stats = vitals.stats
        while (stats.stored, stats.dead_lettered) < expected:
            await asyncio.sleep(0.02)
            if time.monotonic() > deadline:
                raise TimeoutError(f"only {stats.stored} of {expected[0]} readings stored")
        cpu = time.process_time() - cpu
        if profiler:
            profiler.disable()
        runtime = app.state.runtime
        async with runtime.engine.connect() as conn:
            counts = {
                table: (await conn.execute(text(f"SELECT COUNT(*) FROM {table}"))).scalar_one()  # noqa: S608
                for table in ("readings", "alerts", "outbox_messages")
            }
        await asyncio.sleep(1.0)  # let the outbox relay publish the alerts
    assert stats.first_batch_at is not None
    assert stats.last_batch_done_at is not None
    seconds = stats.last_batch_done_at - stats.first_batch_at
    result: dict[str, Any] = {
        "records": total,
        "records_processed": stats.records,
        "stored": stats.stored,
        "duplicates": stats.duplicates,
        "dead_lettered": stats.dead_lettered,
        "batches": stats.batches,
        "mean_batch_size": round(stats.records / stats.batches, 1),
        "seconds": seconds,
        "rate": total / seconds,
        "cpu_seconds": cpu,
        "records_per_cpu_second": total / cpu,
        "stage_seconds": {k: round(v, 3) for k, v in stats.seconds.items()},
        "database_rows": counts,
    }
    if profiler:
        out = io.StringIO()
        pstats.Stats(profiler, stream=out).sort_stats("tottime").print_stats(25)
        result["profile_top_tottime"] = _profile_lines(out.getvalue())
    return result


# -- scaling: N service processes on one PostgreSQL database --------------------------


def _instance(settings: MonitoringSettings, stop: Any) -> None:
    """A child process: the monitoring service's app, consuming until told to stop."""
    configure_logging("WARNING", "console", "monitoring")

    async def serve() -> None:
        app: FastAPI = build(settings)
        async with app.router.lifespan_context(app):
            await asyncio.to_thread(stop.wait)

    asyncio.run(serve())


_TICKS = os.sysconf("SC_CLK_TCK")


def _machine_busy() -> tuple[float, float]:
    """(busy, total) CPU seconds of the whole machine, all cores (/proc/stat)."""
    values = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = values[3] + values[4]
    return (sum(values) - idle) / _TICKS, sum(values) / _TICKS


class CpuMeter:
    """CPU seconds per role (service processes, PostgreSQL's postmaster and backends,
    the broker) and of the whole machine between `start` and `stop`: says whether the
    cores or the database are the limit."""

    def __init__(self, roles: dict[str, Any]) -> None:
        self.roles = roles  # name -> callable returning the role's pids now
        self.seen: dict[int, tuple[str, float]] = {}
        self.machine: tuple[float, float] = (0.0, 0.0)

    def _sample(self) -> None:
        for role, pids in self.roles.items():
            for pid in pids():
                cpu = cpu_seconds(pid)
                if cpu is not None:  # a process that is gone keeps its last figure
                    self.seen[pid] = (role, cpu)

    def start(self) -> None:
        self._sample()
        self.baseline = dict(self.seen)
        self.machine = _machine_busy()

    def tick(self) -> None:  # backends come and go: keep their last figure
        self._sample()

    def stop(self, wall: float) -> dict[str, Any]:
        self._sample()
        busy, total = _machine_busy()
        used: dict[str, float] = {}
        for pid, (role, cpu) in self.seen.items():
            before = self.baseline.get(pid, (role, 0.0))[1]
            used[role] = used.get(role, 0.0) + cpu - before
        cores = os.cpu_count() or 1
        return {
            "cpu_seconds": {k: round(v, 2) for k, v in sorted(used.items())},
            "cores_used": {k: round(v / wall, 2) for k, v in sorted(used.items())},
            "machine_busy_share": round((busy - self.machine[0]) / (total - self.machine[1]), 3),
            "machine_cores": cores,
        }


async def scaling_run(
    settings: MonitoringSettings,
    instances: int,
    expected: int,
    records: int,
    roles: dict[str, Any],
) -> dict[str, Any]:
    """Start `instances` processes (one consumer group, a fresh one, so the topic is
    read from the start) and time, from the first stored reading to the last, how
    long they take together (the sessions' reading counts, written in each batch's
    transaction: a cheap poll, unlike COUNT(*) over the readings), with the CPU
    each role used meanwhile."""
    context = multiprocessing.get_context("spawn")
    stop = context.Event()
    workers = [context.Process(target=_instance, args=(settings, stop)) for _ in range(instances)]
    for worker in workers:
        worker.start()
    meter = CpuMeter({**roles, "monitoring": lambda: [w.pid for w in workers if w.pid is not None]})
    engine = create_engine(settings.resolved_database_url)
    first: float | None = None
    poll = text("SELECT COALESCE(SUM(reading_count), 0) FROM monitored_sessions")
    waits: Counter[str] = Counter()
    try:
        deadline = time.monotonic() + 1800
        while True:
            async with engine.connect() as conn:
                count = (await conn.execute(poll)).scalar_one()
                if first is not None:
                    waits.update(row[0] for row in await conn.execute(BACKENDS_NOW))
            now = time.perf_counter()
            if first is None and count:
                first = now
                meter.start()
            elif first is not None:
                meter.tick()
            if count >= expected:
                usage = meter.stop(now - first) if first is not None else {}
                break
            if time.monotonic() > deadline:
                raise TimeoutError(f"{count} of {expected} readings stored")
            await asyncio.sleep(0.05)
    finally:
        stop.set()
        for worker in workers:
            worker.join(60)
        await engine.dispose()
    assert first is not None
    seconds = now - first
    sampled = sum(waits.values()) or 1
    return {
        "instances": instances,
        "seconds": round(seconds, 3),
        "rate": round(records / seconds),
        **usage,
        "postgres_backends_sampled": {
            "samples": sum(waits.values()),
            "share": {what: round(n / sampled, 3) for what, n in waits.most_common()},
        },
    }


# What the instances' PostgreSQL backends are doing, sampled with each 50 ms poll: on
# the CPU (`active`), waiting inside PostgreSQL (`active` with a wait event: a lock, the
# WAL's flush at commit), or waiting for their instance (`idle in transaction`: between
# a batch's statements; `idle`: between batches, or a pooled connection not in use).
# A lock wait also names the statement that waits and what its blockers are running
# (their first words): who waits for whom, which the wait event alone does not say.
BACKENDS_NOW = text(
    "SELECT a.state || COALESCE(' ' || a.wait_event_type || ':' || a.wait_event, '') "
    "|| CASE WHEN a.wait_event_type = 'Lock' THEN ' | ' || left(a.query, 60) || ' | behind: ' "
    "|| COALESCE((SELECT string_agg(b.state || ' ' || left(b.query, 40), '; ') "
    "FROM pg_stat_activity b WHERE b.pid = ANY(pg_blocking_pids(a.pid))), 'gone') "
    "ELSE '' END "
    "FROM pg_stat_activity a WHERE a.datname = current_database() "
    "AND a.backend_type = 'client backend' AND a.pid <> pg_backend_pid()"
)


def _rounded(values: dict[str, Any]) -> dict[str, Any]:
    return {k: round(v, 3) if isinstance(v, float) else v for k, v in values.items()}


def _profile_lines(report: str) -> list[str]:
    lines = report.splitlines()
    start = next(i for i, line in enumerate(lines) if line.strip().startswith("ncalls"))
    return [line.rstrip() for line in lines[start : start + 26] if line.strip()]


# -- the run --------------------------------------------------------------------------------


def machine() -> dict[str, Any]:
    return {
        "cores": os.cpu_count(),
        "cpu": cpu_model(),
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "os": platform.platform(),
        "kafka": kafka_version(),
        "load_average_at_start": [round(x, 2) for x in os.getloadavg()],
        "packages": {
            name: importlib.metadata.version(name)
            for name in ("aiokafka", "faststream", "pydantic", "sqlalchemy", "aiosqlite", "asyncpg")
        },
    }


async def run(args: argparse.Namespace) -> dict[str, Any]:
    info = machine()
    ensure_jars()
    sessions = Sessions(args.sessions, args.readings)
    with contextlib.ExitStack() as stack:
        work = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="kap-bench-")))
        kafka = stack.enter_context(
            LocalKafka(
                partitions=args.partitions,
                heap="1g",
                overrides={"log.segment.bytes": str(512 * 1024 * 1024)},
            )
        )
        log(f"kafka {kafka.bootstrap} up")
        if args.database == "postgres":
            postgres = stack.enter_context(LocalPostgres())
            database_url = postgres.create_database("bench_monitoring")
        else:
            database_url = f"sqlite:///{work / 'monitoring.db'}"
        settings = MonitoringSettings(
            var_dir=work,
            database_url=database_url,
            kap_jwt_secret="bench-secret-that-is-long-enough-for-hs256",  # noqa: S106 - local run
            kafka=KafkaSettings(bootstrap_servers=kafka.bootstrap),
            kafka_topic_partitions=args.partitions,
            vitals_batch_max_records=args.batch,
            log_level="WARNING",
        )
        await ensure_topics(settings.kafka, partitions=args.partitions, replication=1)
        url = settings.resolved_database_url
        await asyncio.to_thread(upgrade, url, migrations_dir("kap_monitoring"))
        await open_sessions(url, sessions)
        log(f"{len(sessions.ids)} sessions open in {args.database}")

        records = readings(sessions, args.readings, random.Random(11), args.reading_ids)
        seconds = await prefill(kafka.bootstrap, records)
        log(f"pre-filled {len(records)} records in {seconds:.1f}s")

        bare = await bare_consumer(
            kafka.bootstrap, len(records), args.batch, settings.vitals_max_partition_fetch_bytes
        )
        log(f"bare aiokafka: {bare['rate']:.0f} records/s")
        contract = await contract_consumer(
            kafka.bootstrap, len(records), args.batch, settings.vitals_max_partition_fetch_bytes
        )
        log(f"aiokafka + contract validation: {contract['rate']:.0f} records/s")
        pydantic_only = await contract_consumer(
            kafka.bootstrap,
            len(records),
            args.batch,
            settings.vitals_max_partition_fetch_bytes,
            PYDANTIC_ONLY,
        )
        log(f"aiokafka + the pydantic model alone: {pydantic_only['rate']:.0f} records/s")
        per_session = args.readings // args.sessions
        expected = (per_session * args.sessions, max(1, args.readings // 10_000))
        mon = await monitoring_consumer(settings, len(records), expected, args.profile)
        log(f"monitoring: {mon['rate']:.0f} readings/s")
        # The machine is shared: the baselines run again after monitoring, and the
        # ratios use the mean of both runs (each run is recorded).
        bare_after = await bare_consumer(
            kafka.bootstrap, len(records), args.batch, settings.vitals_max_partition_fetch_bytes
        )
        contract_after = await contract_consumer(
            kafka.bootstrap, len(records), args.batch, settings.vitals_max_partition_fetch_bytes
        )
        log(f"after: bare {bare_after['rate']:.0f}/s, contract {contract_after['rate']:.0f}/s")
        scaling = []
        for instances in args.scale:
            if args.database != "postgres":
                raise SystemExit("--scale needs --database postgres (one writer per SQLite file)")
            url = postgres.create_database(f"bench_scale_{instances}")
            scaled = settings.model_copy(
                update={
                    "database_url": url,
                    "vitals_consumer_group": f"bench-scale-{uuid.uuid4().hex[:6]}",
                }
            )
            await asyncio.to_thread(
                upgrade, scaled.resolved_database_url, migrations_dir("kap_monitoring")
            )
            await open_sessions(scaled.resolved_database_url, sessions)
            postmaster = postmaster_pid(postgres.data_dir)
            kafka_pid = kafka.pid
            roles = {
                "postgres": lambda pm=postmaster: [pm, *children(pm)],
                "kafka": lambda k=kafka_pid: [k] if k else [],
            }
            result = await scaling_run(scaled, instances, expected[0], len(records), roles)
            log(f"{instances} instance(s): {result['rate']} readings/s")
            scaling.append(result)
    bare_rate = (bare["rate"] + bare_after["rate"]) / 2
    contract_rate = (contract["rate"] + contract_after["rate"]) / 2
    ratio = mon["rate"] / bare_rate
    bare_cpu = (bare["records_per_cpu_second"] + bare_after["records_per_cpu_second"]) / 2
    contract_cpu = (
        contract["records_per_cpu_second"] + contract_after["records_per_cpu_second"]
    ) / 2
    return {
        "benchmark": "vitals_throughput",
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": info,
        "parameters": {
            "readings": args.readings,
            "records_on_topic": len(records),
            "sessions": args.sessions,
            "partitions": args.partitions,
            "batch_max_records": args.batch,
            "database": args.database,
            "reading_cadence_seconds": CADENCE_SECONDS,
            "reading_ids": args.reading_ids,
        },
        "prefill_seconds": round(seconds, 2),
        "bare_aiokafka": _rounded(bare),
        "bare_aiokafka_after": _rounded(bare_after),
        "monitoring": _rounded(mon),
        "contract_validation_only": _rounded(contract),
        "contract_validation_only_after": _rounded(contract_after),
        "contract_validation_pydantic_only": _rounded(pydantic_only),
        "ratio": round(ratio, 3),
        "ratio_contract_to_bare": round(contract_rate / bare_rate, 3),
        "ratio_monitoring_to_contract": round(mon["rate"] / contract_rate, 3),
        "microseconds_per_record": {
            "bare_aiokafka": round(1e6 / bare_rate, 2),
            "contract_validation_added": round(1e6 / contract_rate - 1e6 / bare_rate, 2),
            "platform_added": round(1e6 / mon["rate"] - 1e6 / contract_rate, 2),
        },
        "cpu_ratio": round(mon["records_per_cpu_second"] / bare_cpu, 3),
        "cpu_microseconds_per_record": {
            "bare_aiokafka": round(1e6 / bare_cpu, 2),
            "contract_validation_added": round(1e6 / contract_cpu - 1e6 / bare_cpu, 2),
            "platform_added": round(1e6 / mon["records_per_cpu_second"] - 1e6 / contract_cpu, 2),
        },
        "load_average_at_end": [round(x, 2) for x in os.getloadavg()],
        "scaling_postgres_processes": scaling,
        "targets": {
            "ratio": 0.25,
            "met": bool(ratio >= 0.25),
        },
    }


def main(argv: list[str] | None = None) -> int:
    configure_logging("WARNING", "console", "monitoring")
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--readings", type=int, default=200_000)
    parser.add_argument("--sessions", type=int, default=300)
    parser.add_argument("--partitions", type=int, default=3)
    parser.add_argument("--batch", type=int, default=5000, help="max records per batch")
    parser.add_argument("--database", choices=("sqlite", "postgres"), default="sqlite")
    parser.add_argument("--profile", action="store_true", help="cProfile monitoring's run")
    parser.add_argument(
        "--reading-ids",
        choices=("sequential", "uuid"),
        default="sequential",
        help="the readings' ids: <session>-<n> (the recorded run) or random UUIDs",
    )
    parser.add_argument(
        "--scale",
        type=lambda v: [int(n) for n in v.split(",") if n],
        default=[],
        help="also run N service processes on PostgreSQL, e.g. --scale 1,2",
    )
    parser.add_argument("--output", type=Path, default=RESULTS)
    parser.add_argument("--no-write", action="store_true", help="print only")
    parser.add_argument(
        "--variant",
        help="record this run's summary under variants.<name> of the output file "
        "instead of replacing it (e.g. partition or database sweeps)",
    )
    args = parser.parse_args(argv)
    result = asyncio.run(run(args))
    print(json.dumps(result, indent=2))
    if args.no_write:
        return 0
    args.output.parent.mkdir(parents=True, exist_ok=True)
    if args.variant:
        document = json.loads(args.output.read_text()) if args.output.exists() else {}
        document.setdefault("variants", {})[args.variant] = {
            "date": result["date"],
            "parameters": result["parameters"],
            "load_average_at_start": result["machine"]["load_average_at_start"],
            "load_average_at_end": result["load_average_at_end"],
            "bare_aiokafka_rate": result["bare_aiokafka"]["rate"],
            "bare_aiokafka_rate_after": result["bare_aiokafka_after"]["rate"],
            "contract_validation_rate": result["contract_validation_only"]["rate"],
            "contract_validation_rate_after": result["contract_validation_only_after"]["rate"],
            "contract_validation_pydantic_only_rate": result["contract_validation_pydantic_only"][
                "rate"
            ],
            "ratio_contract_to_bare": result["ratio_contract_to_bare"],
            "microseconds_per_record": result["microseconds_per_record"],
            "cpu_ratio": result["cpu_ratio"],
            "cpu_microseconds_per_record": result["cpu_microseconds_per_record"],
            "monitoring_rate": result["monitoring"]["rate"],
            "ratio": result["ratio"],
            "stage_seconds": result["monitoring"]["stage_seconds"],
            "scaling_postgres_processes": result["scaling_postgres_processes"],
            **(
                {"profile_top_tottime": result["monitoring"]["profile_top_tottime"]}
                if "profile_top_tottime" in result["monitoring"]
                else {}
            ),
        }
        result = document
    elif args.output.exists():  # keep recorded variants when the main run is redone
        result["variants"] = json.loads(args.output.read_text()).get("variants", {})
    args.output.write_text(json.dumps(result, indent=2) + "\n")
    log(f"written {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
