"""Alert latency: from a critical reading produced on kap.monitoring.vitals.v1 to
its in-app notification arriving on notifications' GET /inbox/stream (SSE), under a
steady background of normal readings, beside the broker's own floor measured in the
same run.

What one run does:
1. starts Kafka from the Maven jars and the services as separate processes
   (kap_local.platform; SQLite, the embedded default, or with `--database postgres` a
   local PostgreSQL server, a database per service, as the platform is deployed);
2. opens dosing sessions the way scheduling would announce them
   (SessionScheduled + SessionCheckedIn on kap.scheduling.events.v1) and gives each
   measurement session its first dose through monitoring's HTTP API;
3. connects to GET /inbox/stream as the sessions' prescriber;
4. produces background readings (normal values, --background readings/s) for the
   background sessions, and meanwhile, every --interval seconds, one critical reading
   (BP 210/125: KET-MON-BP, "above 200/120 once") for the next measurement session
   and, a third of an interval later, one floor probe: a record of the same size on a
   topic of its own (same partitions), produced by the same producer (the services'
   settings: idempotent, acks=all, linger 0) and read by a bare AIOKafkaConsumer;
   another third later, one marker through the architecture's floor
   (`bench/pipeline_floor.py`: the path's two broker hops, two transactions on the
   run's kind of database and a stream push in two bare processes, no platform code);
5. latency = SSE arrival - the moment just before the critical reading was produced;
   each alert is also split into hops from timestamps the platform writes anyway
   (VitalsAlert.occurred_at = monitoring's rule evaluation, the record's CreateTime =
   the outbox relay's send, the outbox row's published_at = the broker's ack, the
   notification's created_at = notifications' routing) plus a side consumer's
   arrival time for the VitalsAlert; all are wall-clock times on one machine;
6. writes bench/results/alert_latency.json: machine (CPU, cores, load average before
   and after), versions, parameters, the three latencies (alert, broker floor,
   pipeline floor) and the ratios, per-hop p50/p99.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import json
import os
import platform as host
import shutil
import statistics
import subprocess
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

import httpx
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import text

from benchlib import (
    announced_im_session,
    children,
    cpu_model,
    cpu_seconds,
    create_topics,
    first_dose,
    postmaster_pid,
    record_run,
    services_producer,
)
from kap_local.kafka import LocalKafka, ensure_jars, kafka_version
from kap_local.platform import Platform, postgres_databases
from kap_local.postgres import LocalPostgres
from kap_local.processes import free_port
from kap_shared.auth import mint_token
from kap_shared.db import create_engine
from kap_shared.events import VitalsRecorded, topics
from kap_shared.events.monitoring import VitalsRecordedData
from kap_shared.settings import async_database_url
from pipeline_floor import IN_TOPIC as PIPELINE_IN
from pipeline_floor import PipelineFloor

RESULTS = Path(__file__).parent / "results" / "alert_latency.json"
SECRET = "bench-secret-long-enough-for-hs256-signing"  # noqa: S105 - a throw-away platform
SITE, PRESCRIBER, THERAPIST = "site-bench", "rx-bench", "th-bench"
PROBE_TOPIC = "bench.floor.v1"  # the floor probes: nobody else reads it


NORMAL = {"bp_systolic": 124, "bp_diastolic": 80, "heart_rate": 72, "spo2": 98}
CRITICAL = {"bp_systolic": 210, "bp_diastolic": 125}  # KET-MON-BP: above 200/120 once


def _vitals(
    patient_id: str,
    session_id: str,
    reading_id: str,
    recorded_at: datetime,
    values: dict[str, int],
    **envelope: Any,
) -> VitalsRecorded:
    """A reading as a bedside gateway publishes it (`envelope`: e.g. a template's fixed
    event id and time)."""
    return VitalsRecorded(
        producer="gateway-bench",
        site_id=SITE,
        patient_id=patient_id,
        correlation_id=f"episode-{patient_id}",
        data=VitalsRecordedData(
            session_id=session_id, reading_id=reading_id, recorded_at=recorded_at, **values
        ),
        **envelope,
    )


class BackgroundReadings:
    """Normal readings for the background sessions, serialized once per session through
    the contract model; each send only swaps in fresh ids and times (the load generator
    must not eat the CPU the services are measured on)."""

    _EVENT_ID = uuid.UUID(int=0)
    _READING_ID = "reading-id-placeholder"
    _AT = datetime(2000, 1, 1, tzinfo=UTC)

    def __init__(self, sessions: list[tuple[str, str]]) -> None:
        self._templates: list[tuple[bytes, bytes]] = []
        for patient_id, session_id in sessions:
            event = _vitals(
                patient_id,
                session_id,
                self._READING_ID,
                self._AT,
                NORMAL,
                event_id=self._EVENT_ID,
                occurred_at=self._AT,
            )
            self._templates.append((event.key, event.to_json()))
        self._placeholders = (
            str(self._EVENT_ID).encode(),
            self._READING_ID.encode(),
            self._AT.isoformat().replace("+00:00", "Z").encode(),
        )

    def __len__(self) -> int:
        return len(self._templates)

    def reading(self, index: int) -> tuple[bytes, bytes]:
        key, value = self._templates[index % len(self._templates)]
        event_id, reading_id, at = self._placeholders
        now = datetime.now(UTC).isoformat().replace("+00:00", "Z").encode()
        value = value.replace(event_id, str(uuid.uuid4()).encode(), 1)
        value = value.replace(reading_id, uuid.uuid4().hex.encode(), 1)
        return key, value.replace(at, now)


async def _send(
    producer: AIOKafkaProducer, topic: str, key: bytes, value: bytes, kind: str
) -> None:
    await producer.send(
        topic,
        value,
        key=key,
        headers=[("event_type", kind.encode()), ("content-type", b"application/json")],
    )


def _epoch(value: str | datetime) -> float:
    """An ISO timestamp (aware, or naive UTC as SQLite stores it) or a datetime (as
    PostgreSQL returns it) as epoch seconds."""
    moment = (
        value
        if isinstance(value, datetime)
        else datetime.fromisoformat(value.replace("Z", "+00:00"))
    )
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp()


def _stats(values: list[float]) -> dict[str, float]:
    """p50/p90/p99/max/mean in milliseconds of values in seconds."""
    ordered = sorted(values)

    def pct(p: float) -> float:
        return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))] * 1000

    return {
        "n": len(ordered),
        "p50": round(pct(50), 1),
        "p90": round(pct(90), 1),
        "p99": round(pct(99), 1),
        "max": round(ordered[-1] * 1000, 1),
        "mean": round(statistics.fmean(ordered) * 1000, 1),
    }


async def _outbox_times(
    database_url: str, event_type: str
) -> dict[str, tuple[float, float | None]]:
    """patient_id -> (created_at, published_at) of the first outbox row of a type."""
    times: dict[str, tuple[float, float | None]] = {}
    engine = create_engine(async_database_url(database_url))
    try:
        async with engine.connect() as connection:
            rows = await connection.execute(
                text(
                    "SELECT payload, created_at, published_at FROM outbox_messages"
                    " WHERE event_type = :event_type ORDER BY seq"
                ),
                {"event_type": event_type},
            )
            for payload, created, published in rows:
                data = payload if isinstance(payload, dict) else json.loads(payload)
                if data["patient_id"] not in times:
                    published_at = _epoch(published) if published else None
                    times[data["patient_id"]] = (_epoch(created), published_at)
    finally:
        await engine.dispose()
    return times


def _versions() -> dict[str, str]:
    names = ("aiokafka", "faststream", "sqlalchemy", "uvicorn", "kap-shared")
    found = {name: metadata.version(name) for name in names}
    return {"python": host.python_version(), "kafka": kafka_version(), **found}


async def run(args: argparse.Namespace) -> dict[str, Any]:
    ensure_jars()
    work = Path(tempfile.mkdtemp(prefix="kap-bench-latency-"))
    load_before = list(os.getloadavg())
    with contextlib.ExitStack() as stack:
        kafka = stack.enter_context(LocalKafka(partitions=args.partitions))
        roles: dict[str, Callable[[], list[int]]] = {"broker": lambda: _alive(kafka.pid)}
        database_urls = None
        monitoring_database = f"sqlite:///{work / 'monitoring' / 'monitoring.db'}"
        if args.database == "postgres":
            postgres = stack.enter_context(LocalPostgres())
            database_urls = postgres_databases(postgres, "bench")
            monitoring_database = database_urls["monitoring"]
            postmaster = postmaster_pid(postgres.data_dir)
            roles["postgres"] = lambda: [postmaster, *children(postmaster)]
        platform = Platform(
            bootstrap=kafka.bootstrap,
            work_dir=work,
            jwt_secret=SECRET,
            database_urls=database_urls,
            extra_env={
                "LOG_LEVEL": "WARNING",
                "KAFKA_TOPIC_PARTITIONS": str(args.partitions),
                **dict(item.split("=", 1) for item in args.env),
            },
        )
        platform.start()
        stages = ("first", "second")
        if args.database == "postgres":
            floor_databases = [postgres.create_database(f"pipeline_{s}") for s in stages]
        else:
            floor_databases = [str(work / f"pipeline-{stage}.db") for stage in stages]
        pipeline = PipelineFloor(kafka.bootstrap, floor_databases, free_port(), args.partitions)
        try:
            await pipeline.create_topics()
            pipeline.start()
            roles["pipeline-floor"] = lambda: pipeline.pids
            result = await _measure(args, platform, kafka.bootstrap, roles, pipeline)
        finally:
            pipeline.stop()
            platform.stop()
        # The outbox's times are read while the database still runs.
        relayed = await _outbox_times(monitoring_database, "VitalsAlert")
    result["machine"]["load_average_before"] = load_before
    result["hops_ms"] = _hops(result.pop("_samples"), relayed)
    result["hop_1_in_vitals_batches"] = hop_1_in_batches(result)
    shutil.rmtree(work, ignore_errors=True)
    return result


def hop_1_in_batches(result: dict[str, Any]) -> float | None:
    """Hop 1's median over the mean vitals batch: about 1.5-2 if a critical reading waits
    for the batch in progress and then its own, one more if it also waits for a batch of
    older readings (aiokafka's prefetch; bench/batch_staleness.py)."""
    hop_1 = next(iter(result["hops_ms"].values()), None)
    batch = result["service_metrics"]["monitoring_vitals_batch"].get("mean_ms")
    if not hop_1 or not batch:
        return None
    return round(float(hop_1["p50"]) / float(batch), 2)


async def _open_sessions(
    args: argparse.Namespace,
    platform: Platform,
    producer: AIOKafkaProducer,
    sessions: list[tuple[str, str]],
    measured: list[tuple[str, str]],
) -> None:
    for patient_id, session_id in sessions:
        announced = announced_im_session(
            patient_id,
            session_id,
            site_id=SITE,
            prescriber_id=PRESCRIBER,
            therapist_id=THERAPIST,
            checked_in_at=datetime.now(UTC),
        )
        for key, value, kind in announced:
            await _send(producer, topics.SCHEDULING_EVENTS, key, value, kind)
    await producer.flush()
    nurse = {
        "Authorization": f"Bearer {mint_token(SECRET, sub='rn-bench', role='nurse', sites=[SITE])}"
    }
    async with httpx.AsyncClient(
        base_url=platform.url("monitoring"), headers=nurse, timeout=30
    ) as api:
        for _patient_id, session_id in measured:  # KET-MON-BP applies once dosing started
            await first_dose(api, session_id, within=60)


async def wait_caught_up(platform: Platform, budget: float = 600) -> float:
    """Wait until every service has consumed what the set-up produced (consumer lag 0)
    and published its outbox, so the set-up backlog is not measured as alert latency.
    Returns the seconds waited."""
    started = time.monotonic()
    async with httpx.AsyncClient(timeout=30) as http:
        while True:
            behind = 0.0
            for name in ("intake", "scheduling", "monitoring", "notifications", "records"):
                text = (await http.get(f"{platform.url(name)}/metrics")).text
                for line in text.splitlines():
                    if line.startswith(("kap_consumer_lag{", "kap_outbox_backlog ")):
                        behind += float(line.rpartition(" ")[2])
            if behind == 0:
                return time.monotonic() - started
            if time.monotonic() - started > budget:
                raise RuntimeError(f"the services are still {behind:.0f} events behind")
            await asyncio.sleep(1)


MetricSamples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


async def scrape(platform: Platform) -> dict[str, MetricSamples]:
    """monitoring's and notifications' /metrics samples (counters and histograms)."""
    scraped: dict[str, MetricSamples] = {}
    async with httpx.AsyncClient(timeout=30) as http:
        for name in PROFILED:
            text = (await http.get(f"{platform.url(name)}/metrics")).text
            scraped[name] = {
                (sample.name, tuple(sorted(sample.labels.items()))): sample.value
                for family in text_string_to_metric_families(text)
                for sample in family.samples
            }
    return scraped


def histogram(
    before: MetricSamples, after: MetricSamples, name: str, /, **labels: str
) -> dict[str, float] | None:
    """A histogram's observations between two scrapes: count, mean and the bucket
    bounds (upper, in ms) holding the median and the 99th percentile."""

    def delta(sample: str, **extra: str) -> float:
        key = (sample, tuple(sorted({**labels, **extra}.items())))
        return after.get(key, 0.0) - before.get(key, 0.0)

    count = delta(f"{name}_count")
    if not count:
        return None
    bounds = sorted(
        {dict(k[1])["le"] for k in after if k[0] == f"{name}_bucket" and "le" in dict(k[1])},
        key=float,
    )
    cumulative = [(float(le), delta(f"{name}_bucket", le=le)) for le in bounds]

    def bound(share: float) -> float:
        return next(le for le, n in cumulative if n >= share * count) * 1000

    return {
        "count": count,
        "mean_ms": round(delta(f"{name}_sum") / count * 1000, 1),
        "p50_le_ms": bound(0.5),
        "p99_le_ms": bound(0.99),
    }


def service_metrics(
    before: dict[str, MetricSamples], after: dict[str, MetricSamples]
) -> dict[str, Any]:
    """What the services' own metrics say about the measured phase."""
    monitoring, notifications = (
        (before["monitoring"], after["monitoring"]),
        (
            before["notifications"],
            after["notifications"],
        ),
    )
    handler = "kap_event_handler_duration_seconds"
    relay = "kap_outbox_relay_seconds"
    batches = histogram(*monitoring, handler, topic=topics.MONITORING_VITALS)
    stored_key = (
        "kap_events_consumed_total",
        tuple(
            sorted(
                {
                    "topic": topics.MONITORING_VITALS,
                    "event_type": "VitalsRecorded",
                    "outcome": "processed",
                }.items()
            )
        ),
    )
    stored = monitoring[1].get(stored_key, 0.0) - monitoring[0].get(stored_key, 0.0)
    return {
        "monitoring_vitals_batch": {
            **(batches or {}),
            "mean_records": round(stored / batches["count"], 1) if batches else None,
        },
        "monitoring_relay": {
            stage: histogram(*monitoring, relay, stage=stage)
            for stage in ("wake_to_send", "send", "mark")
        },
        "notifications_handler_monitoring_events": histogram(
            *notifications, handler, topic=topics.MONITORING_EVENTS
        ),
        "notifications_relay": {
            stage: histogram(*notifications, relay, stage=stage)
            for stage in ("wake_to_send", "send", "mark")
        },
        # On SQLite: the writer lock's waits and the checkpoint passes (round 23; round
        # 22 traced them with a throwaway patch). Empty on PostgreSQL.
        "sqlite": {
            name: {
                "writer_wait": histogram(*pair, "kap_sqlite_writer_wait_seconds"),
                "checkpoint": {
                    kind: histogram(*pair, "kap_sqlite_checkpoint_seconds", **{"pass": kind})
                    for kind in ("passive", "unlocked", "locked")
                },
            }
            for name, pair in (("monitoring", monitoring), ("notifications", notifications))
        },
    }


def _alive(pid: int | None) -> list[int]:
    return [pid] if pid else []


def _cpu_seconds(pids: list[int]) -> float:
    """The CPU seconds of a role's processes (one that is gone counts nothing)."""
    return sum(cpu_seconds(pid) or 0.0 for pid in pids)


async def _measure(
    args: argparse.Namespace,
    platform: Platform,
    bootstrap: str,
    roles: dict[str, Callable[[], list[int]]],
    pipeline: PipelineFloor,
) -> dict[str, Any]:
    await create_topics(bootstrap, [PROBE_TOPIC], args.partitions)

    background_producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap, enable_idempotence=True, linger_ms=5
    )
    # Critical readings and floor probes: one producer, the services' settings.
    producer = services_producer(bootstrap)
    await background_producer.start()
    await producer.start()
    measured = [(f"pt-m-{n}", f"sess-m-{n}") for n in range(args.samples)]
    background = [(f"pt-b-{n}", f"sess-b-{n}") for n in range(args.background_sessions)]
    await _open_sessions(args, platform, background_producer, measured + background, measured)
    setup_backlog_seconds = await wait_caught_up(platform)

    prescriber_token = mint_token(SECRET, sub=PRESCRIBER, role="prescriber", sites=[SITE])
    prescriber = {"Authorization": f"Bearer {prescriber_token}"}
    # Wall-clock times (time.time()): comparable with the services' timestamps.
    sent_at: dict[str, float] = {}
    arrived_at: dict[str, float] = {}
    routed_at: dict[str, float] = {}
    alert_seen: dict[str, tuple[float, float, float]] = {}  # occurred, CreateTime, arrival
    probe_sent: dict[str, float] = {}
    floor: dict[str, float] = {}
    marker_sent: dict[str, float] = {}
    through_pipeline: dict[str, float] = {}
    connected, all_arrived = asyncio.Event(), asyncio.Event()
    pipeline_connected, pipeline_through = asyncio.Event(), asyncio.Event()

    async def listen() -> None:
        async with (
            httpx.AsyncClient(
                base_url=platform.url("notifications"), timeout=httpx.Timeout(10, read=120)
            ) as http,
            http.stream("GET", "/inbox/stream", headers=prescriber) as stream,
        ):
            kind = None
            async for line in stream.aiter_lines():
                if line.startswith(":"):
                    connected.set()
                elif line.startswith("event:"):
                    kind = line.partition(":")[2].strip()
                elif line.startswith("data:") and kind == "notification":
                    arrived = time.time()
                    item = json.loads(line.partition(":")[2])
                    patient_id = item["patient_id"]
                    if patient_id in sent_at and patient_id not in arrived_at:
                        arrived_at[patient_id] = arrived
                        routed_at[patient_id] = _epoch(item["created_at"])
                        if len(arrived_at) == len(measured):
                            all_arrived.set()

    async def bare_consumer(topic: str, group: str, on_record: Any) -> None:
        # aiokafka's defaults, as the services' subscribers use them.
        consumer = AIOKafkaConsumer(
            topic, bootstrap_servers=bootstrap, group_id=group, auto_offset_reset="earliest"
        )
        await consumer.start()
        try:
            async for record in consumer:
                on_record(record, time.time())
        finally:
            await consumer.stop()

    def on_probe(record: Any, arrived: float) -> None:
        probe_id = record.key.decode()
        if probe_id in probe_sent:
            floor[probe_id] = arrived - probe_sent[probe_id]

    def on_alert(record: Any, arrived: float) -> None:
        event = json.loads(record.value)
        if event["event_type"] == "VitalsAlert" and event["patient_id"] not in alert_seen:
            alert_seen[event["patient_id"]] = (
                _epoch(event["occurred_at"]),
                record.timestamp / 1000,
                arrived,
            )

    async def pipeline_arrivals() -> None:
        async for marker, arrived in pipeline.arrivals(pipeline_connected):
            pipeline_through.set()
            if marker in marker_sent:
                through_pipeline[marker] = arrived - marker_sent[marker]

    tasks = [
        asyncio.create_task(listen()),
        asyncio.create_task(pipeline_arrivals()),
        asyncio.create_task(bare_consumer(PROBE_TOPIC, "bench-floor", on_probe)),
        asyncio.create_task(bare_consumer(topics.MONITORING_EVENTS, "bench-side", on_alert)),
    ]
    await asyncio.wait_for(connected.wait(), 30)
    await asyncio.wait_for(pipeline_connected.wait(), 60)
    await _pipeline_ready(producer, pipeline_through)

    background_sent = 0
    stop = asyncio.Event()

    async def background_load() -> None:
        nonlocal background_sent
        tick = 0.05
        per_tick = max(1, int(args.background * tick))
        next_at = time.perf_counter()
        while not stop.is_set():
            for n in range(per_tick):
                key, value = readings.reading(background_sent + n)
                await _send(
                    background_producer, topics.MONITORING_VITALS, key, value, "VitalsRecorded"
                )
            background_sent += per_tick
            next_at += tick
            await asyncio.sleep(max(0.0, next_at - time.perf_counter()))

    readings = BackgroundReadings(background)
    # This process reads the stream and the floor's probes: a full collection of its
    # set-up objects (one of 159 ms in a traced run at load 8) would stall both and be
    # measured as latency. The services freeze theirs likewise (kap_shared.service.serve).
    gc.collect()
    gc.freeze()
    loader = asyncio.create_task(background_load())
    await asyncio.sleep(args.warmup)
    # Which process used the machine's cores while alerts were measured (its CPU seconds
    # per second: 1.0 is one core), the benchmark itself and the broker included.
    # PostgreSQL (with --database postgres) is its postmaster and the backends of the
    # services' pools, open by now.
    processes: dict[str, list[int]] = {
        name: _alive(service.proc.pid if service.proc else None)
        for name, service in platform.services.items()
    }
    processes |= {name: pids() for name, pids in roles.items()}
    processes["benchmark"] = [os.getpid()]
    cpu_before = {name: _cpu_seconds(pids) for name, pids in processes.items() if pids}
    started, background_at_start = time.perf_counter(), background_sent
    measuring = args.samples * args.interval
    metrics_before = await scrape(platform)
    profiled = args.profile or []
    profilers = start_profilers(platform, profiled, measuring, args.profile_rate)
    for number, (patient_id, session_id) in enumerate(measured):
        reading = _vitals(patient_id, session_id, uuid.uuid4().hex, datetime.now(UTC), CRITICAL)
        key, value = reading.key, reading.to_json()
        sent_at[patient_id] = time.time()
        await _send(producer, topics.MONITORING_VITALS, key, value, "VitalsRecorded")
        await asyncio.sleep(args.interval / 3)
        probe_id = f"probe-{number}"
        probe_sent[probe_id] = time.time()
        await _send(producer, PROBE_TOPIC, probe_id.encode(), value, "VitalsRecorded")
        await asyncio.sleep(args.interval / 3)
        marker = f"marker-{number}"
        marker_sent[marker] = time.time()
        await _send(producer, PIPELINE_IN, marker.encode(), value, "VitalsRecorded")
        await asyncio.sleep(args.interval / 3)
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(all_arrived.wait(), 30)
    elapsed = time.perf_counter() - started
    cpu_share = {
        name: round((_cpu_seconds(pids) - before) / elapsed, 3)
        for name, pids in processes.items()
        if (before := cpu_before.get(name)) is not None
    }
    metrics_after = await scrape(platform)
    stop.set()
    await loader
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    await producer.stop()
    await background_producer.stop()

    profiles = {}
    for name, (process, output) in profilers:
        process.wait(timeout=120)
        profiles[name] = profile_summary(output, measuring, args.profile_rate)
    latencies = [arrived_at[p] - sent_at[p] for p in arrived_at]
    if not latencies or not floor or not through_pipeline:
        raise RuntimeError("no alert reached the inbox stream, or no probe or marker came back")
    alert, bare = _stats(latencies), _stats(list(floor.values()))
    architecture = _stats(list(through_pipeline.values()))
    return {
        "benchmark": "alert_latency",
        "variant": args.variant,
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {
            "cpu": cpu_model(),
            "cores": os.cpu_count(),
            "load_average_at_end": list(os.getloadavg()),
        },
        "versions": _versions(),
        "parameters": {
            "samples": args.samples,
            "interval_seconds": args.interval,
            "background_readings_per_second_target": args.background,
            "background_sessions": args.background_sessions,
            "partitions": args.partitions,
            "database": args.database,
            "service_env": args.env,
            "producer": "idempotent, acks=all, linger_ms=0 (critical readings and probes)",
        },
        "background_readings_per_second_achieved": round(
            (background_sent - background_at_start) / elapsed, 1
        ),
        "received": len(latencies),
        "setup_backlog_seconds": round(setup_backlog_seconds, 1),
        "latency_ms": alert,
        "floor_ms": bare,
        "ratio": {
            "p50": round(alert["p50"] / bare["p50"], 1),
            "p99": round(alert["p99"] / bare["p99"], 1),
        },
        # The same path with no platform code (bench/pipeline_floor.py): what the
        # architecture costs, and what the platform adds on top of it.
        "pipeline_floor_ms": architecture,
        "pipeline_floor_ratio_to_floor": {
            "p50": round(architecture["p50"] / bare["p50"], 1),
            "p99": round(architecture["p99"] / bare["p99"], 1),
        },
        "ratio_to_pipeline_floor": {
            "p50": round(alert["p50"] / architecture["p50"], 1),
            "p99": round(alert["p99"] / architecture["p99"], 1),
        },
        "targets": {
            "p99_ms": 100,
            "p99_met": alert["p99"] <= 100,
            "ratio": 10,
            "ratio_met": alert["p99"] / bare["p99"] <= 10,
        },
        "service_metrics": service_metrics(metrics_before, metrics_after),
        "cpu_share_while_measuring": cpu_share,
        "profiles": profiles,
        "_samples": {
            "sent": sent_at,
            "arrived": arrived_at,
            "routed": routed_at,
            "alert_seen": alert_seen,
        },
    }


async def _pipeline_ready(producer: AIOKafkaProducer, through: asyncio.Event) -> None:
    """Markers until one comes out of the pipeline floor's stream: both of its consumers
    have their partitions (a group's first join takes a few seconds)."""
    for attempt in range(120):
        await _send(producer, PIPELINE_IN, f"warm-up-{attempt}".encode(), b"{}", "WarmUp")
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(through.wait(), 0.5)
            return
    raise RuntimeError("the pipeline floor did not pass a marker within 60 s")


def _hops(
    samples: dict[str, Any], relayed: dict[str, tuple[float, float | None]]
) -> dict[str, dict[str, float]]:
    """Each alert split at the timestamps the platform writes anyway (`relayed`: the
    VitalsAlert outbox rows' times, per patient)."""
    hops: dict[str, list[float]] = {
        "1 reading produced -> monitoring evaluated the rule (Kafka, batch, decode, ingest)": [],
        "2 rule evaluated -> relay sent VitalsAlert (rest of batch, commit, relay wake + read)": [],
        "3 relay sent -> bare side consumer got VitalsAlert (broker hop)": [],
        "4 relay sent -> notifications routed (consume, inbox claim, views, routing)": [],
        "5 notifications routed -> SSE arrival (notification rows, commit, hub, SSE)": [],
        "(off the path) relay sent -> broker acknowledged (published_at)": [],
    }
    names = list(hops)
    for patient_id, arrived in samples["arrived"].items():
        seen = samples["alert_seen"].get(patient_id)
        if seen is None:
            continue
        occurred, sent_by_relay, side_arrival = seen
        routed = samples["routed"][patient_id]
        hops[names[0]].append(occurred - samples["sent"][patient_id])
        hops[names[1]].append(sent_by_relay - occurred)
        hops[names[2]].append(side_arrival - sent_by_relay)
        hops[names[3]].append(routed - sent_by_relay)
        hops[names[4]].append(arrived - routed)
        published = relayed.get(patient_id, (0.0, None))[1]
        if published is not None:
            hops[names[5]].append(published - sent_by_relay)
    return {name: _stats(values) for name, values in hops.items() if values}


PROFILED = ("monitoring", "notifications")
IDLE_FRAMES = ("EpollSelector.select", "Condition.wait", "_connection_worker_thread", "_worker (")


def start_profilers(
    platform: Platform, services: list[str], seconds: float, rate: int
) -> list[tuple[str, Any]]:
    """py-spy (run through uvx, not a project dependency) on `services`."""
    if not services:
        return []
    uvx = shutil.which("uvx")
    if uvx is None:
        raise RuntimeError("--profile needs uvx (py-spy is run with `uvx py-spy`)")
    started = []
    for name in services:
        output = Path(tempfile.mkstemp(prefix=f"kap-spy-{name}-", suffix=".txt")[1])
        command = [uvx, "py-spy", "record", "--nonblocking", "-f", "raw", "-r", str(rate)]
        process = platform[name].proc
        if process is None:
            raise RuntimeError(f"{name} is not running")
        command += ["-d", str(round(seconds)), "-o", str(output), "-p", str(process.pid)]
        started.append((name, (subprocess.Popen(command, stdout=subprocess.DEVNULL), output)))
    return started


def profile_summary(output: Path, seconds: float, rate: int, top: int = 30) -> dict[str, Any]:
    """The event loop's busy share and where its time goes (py-spy raw stacks, main
    thread only; the aiosqlite and other worker threads run outside the GIL mostly)."""
    inclusive: Counter[str] = Counter()
    leaves: Counter[str] = Counter()
    busy = 0
    for line in output.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        frames = stack.split(";")
        if not frames[0].startswith("_run_module_as_main") or frames[-1].startswith(IDLE_FRAMES):
            continue
        busy += int(count)
        leaves[frames[-1]] += int(count)
        for frame in set(frames):
            inclusive[frame] += int(count)
    output.unlink()
    return {
        "event_loop_busy_share": round(busy / (seconds * rate), 3),
        "samples": busy,
        "top_inclusive": [[frame, n] for frame, n in inclusive.most_common(top)],
        "top_self": [[frame, n] for frame, n in leaves.most_common(top)],
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=200)
    parser.add_argument("--interval", type=float, default=0.25)
    parser.add_argument("--background", type=int, default=2000, help="readings/s")
    parser.add_argument("--background-sessions", type=int, default=100)
    parser.add_argument("--partitions", type=int, default=3)
    parser.add_argument("--warmup", type=float, default=5.0)
    parser.add_argument("--variant", default="recorded", help="label of this run in the results")
    parser.add_argument(
        "--database",
        choices=("sqlite", "postgres"),
        default="sqlite",
        help="the services' databases: SQLite files (the embedded default) or one "
        "PostgreSQL server, a database each",
    )
    parser.add_argument(
        "--env", action="append", default=[], help="KEY=VALUE for the services (repeatable)"
    )
    parser.add_argument(
        "--profile",
        nargs="?",
        const=",".join(PROFILED),
        type=lambda v: [name for name in v.split(",") if name],
        help="py-spy these services (default: the path's, monitoring,notifications)",
    )
    parser.add_argument("--profile-rate", type=int, default=100, help="py-spy samples/s")
    parser.add_argument("--no-record", action="store_true", help="print only")
    args = parser.parse_args(argv)
    result = asyncio.run(run(args))
    if not args.no_record:
        record_run(RESULTS, "alert_latency", result)
    shown = ["latency_ms", "floor_ms", "ratio", "pipeline_floor_ms"]
    shown += ["pipeline_floor_ratio_to_floor", "ratio_to_pipeline_floor"]
    print(json.dumps({k: result[k] for k in shown}, indent=1))
    print(json.dumps(result["hops_ms"], indent=1))
    print(json.dumps(result["service_metrics"], indent=1))
    print("CPU while measuring (cores):", json.dumps(result["cpu_share_while_measuring"]))
    print("background/s:", result["background_readings_per_second_achieved"])
    for name, profile in result["profiles"].items():  # --profile: also printed, not only recorded
        print(f"py-spy of {name}: event loop busy {profile['event_loop_busy_share']}")
        for frame, samples in profile["top_inclusive"]:
            print(f"  {samples:6d}  {frame}")
    print("hop 1 p50 in mean vitals batches:", result["hop_1_in_vitals_batches"])
    for moment, key in (("before", "load_average_before"), ("after", "load_average_at_end")):
        load = [round(x, 1) for x in result["machine"][key]]
        print(f"load average (1, 5, 15 min) {moment}:", load)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
