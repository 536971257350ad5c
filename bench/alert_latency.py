"""Alert latency: from a critical reading produced on kap.monitoring.vitals.v1 to
its in-app notification arriving on notifications' GET /inbox/stream (SSE), under a
steady background of normal readings.

What one run does:
1. starts Kafka from the Maven jars and the four services as separate processes
   (kap_local.platform; SQLite, the embedded default);
2. opens dosing sessions the way scheduling would announce them
   (SessionScheduled + SessionCheckedIn on kap.scheduling.events.v1) and gives each
   measurement session its first dose through monitoring's HTTP API;
3. connects to GET /inbox/stream as the sessions' prescriber;
4. produces background readings (normal values, --background readings/s) for the
   background sessions, and meanwhile, every --interval seconds, one critical reading
   (BP 210/125: KET-MON-BP, "above 200/120 once") for the next measurement session;
5. latency = SSE arrival - the moment just before the critical reading was produced;
   records p50/p90/p99/max and the background rate achieved in
   bench/results/alert_latency.json.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform as host
import statistics
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from aiokafka import AIOKafkaProducer

from kap_local.kafka import LocalKafka, ensure_jars, kafka_version
from kap_local.platform import Platform
from kap_shared.auth import mint_token
from kap_shared.events import (
    SessionCheckedIn,
    SessionScheduled,
    TreatmentPlanCreated,
    VitalsRecorded,
    topics,
)
from kap_shared.events.enums import Phase, Route
from kap_shared.events.monitoring import VitalsRecordedData
from kap_shared.events.scheduling import (
    SessionCheckedInData,
    SessionScheduledData,
    TreatmentPlanCreatedData,
)

RESULTS = Path(__file__).parent / "results" / "alert_latency.json"
SECRET = "bench-secret-long-enough-for-hs256-signing"  # noqa: S105 - a throw-away platform
SITE, PRESCRIBER, THERAPIST = "site-bench", "rx-bench", "th-bench"


def _session_events(patient_id: str, session_id: str) -> list[tuple[bytes, bytes, str]]:
    now = datetime.now(UTC)
    common = {
        "producer": "scheduling",
        "site_id": SITE,
        "patient_id": patient_id,
        "correlation_id": f"episode-{patient_id}",
    }
    scheduled = SessionScheduled(
        **common,
        data=SessionScheduledData(
            session_id=session_id,
            plan_id=f"plan-{patient_id}",
            phase=Phase.DOSING,
            sequence=1,
            starts_at=now,
            ends_at=now + timedelta(hours=3),
            room_id="room-bench",
            prescriber_id=PRESCRIBER,
            therapist_id=THERAPIST,
        ),
    )
    checked_in = SessionCheckedIn(
        **common,
        data=SessionCheckedInData(session_id=session_id, phase=Phase.DOSING, checked_in_at=now),
    )
    # The plan's route comes first: doses must follow it (MON-DOSE-3).
    plan = TreatmentPlanCreated(
        **common,
        data=TreatmentPlanCreatedData(
            plan_id=f"plan-{patient_id}",
            route=Route.IM,
            protocol="im",
            prescriber_id=PRESCRIBER,
            therapist_id=THERAPIST,
            planned_dosing_sessions=6,
        ),
    )
    return [(e.key, e.to_json(), e.event_type) for e in (plan, scheduled, checked_in)]


def _reading(patient_id: str, session_id: str, **values: Any) -> tuple[bytes, bytes]:
    event = VitalsRecorded(
        producer="gateway-bench",
        site_id=SITE,
        patient_id=patient_id,
        correlation_id=f"episode-{patient_id}",
        data=VitalsRecordedData(
            session_id=session_id,
            reading_id=uuid.uuid4().hex,
            recorded_at=datetime.now(UTC),
            **values,
        ),
    )
    return event.key, event.to_json()


async def _send(
    producer: AIOKafkaProducer, topic: str, key: bytes, value: bytes, kind: str
) -> None:
    await producer.send(
        topic,
        value,
        key=key,
        headers=[("event_type", kind.encode()), ("content-type", b"application/json")],
    )


async def run(args: argparse.Namespace) -> dict[str, Any]:
    ensure_jars()
    work = Path(tempfile.mkdtemp(prefix="kap-bench-latency-"))
    with LocalKafka(partitions=args.partitions) as kafka:
        platform = Platform(
            bootstrap=kafka.bootstrap,
            work_dir=work,
            jwt_secret=SECRET,
            extra_env={"LOG_LEVEL": "WARNING", "KAFKA_TOPIC_PARTITIONS": str(args.partitions)},
        )
        platform.start()
        try:
            return await _measure(args, platform, kafka.bootstrap)
        finally:
            platform.stop()


async def _measure(args: argparse.Namespace, platform: Platform, bootstrap: str) -> dict[str, Any]:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, enable_idempotence=True, linger_ms=5)
    await producer.start()
    measured = [(f"pt-m-{n}", f"sess-m-{n}") for n in range(args.samples)]
    background = [(f"pt-b-{n}", f"sess-b-{n}") for n in range(args.background_sessions)]
    for patient_id, session_id in measured + background:
        for key, value, kind in _session_events(patient_id, session_id):
            await _send(producer, topics.SCHEDULING_EVENTS, key, value, kind)
    await producer.flush()

    nurse = {
        "Authorization": f"Bearer {mint_token(SECRET, sub='rn-bench', role='nurse', sites=[SITE])}"
    }
    prescriber_token = mint_token(SECRET, sub=PRESCRIBER, role="prescriber", sites=[SITE])
    prescriber = {"Authorization": f"Bearer {prescriber_token}"}
    async with httpx.AsyncClient(
        base_url=platform.url("monitoring"), headers=nurse, timeout=30
    ) as api:
        for _patient_id, session_id in measured:  # KET-MON-BP applies once dosing started
            deadline = time.monotonic() + 60
            while True:
                response = await api.post(
                    f"/sessions/{session_id}/doses",
                    json={"route": "im", "agent": "ketamine", "dose_mg": 35},
                )
                if response.status_code == 201:
                    break
                if time.monotonic() > deadline:
                    raise RuntimeError(f"dose for {session_id}: {response.text}")
                await asyncio.sleep(0.2)  # monitoring has not consumed the check-in yet

    sent_at: dict[str, float] = {}
    latencies: dict[str, float] = {}
    connected, all_arrived = asyncio.Event(), asyncio.Event()

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
                    arrived = time.perf_counter()
                    item = json.loads(line.partition(":")[2])
                    patient_id = item["patient_id"]
                    if patient_id in sent_at and patient_id not in latencies:
                        latencies[patient_id] = arrived - sent_at[patient_id]
                        if len(latencies) == len(measured):
                            all_arrived.set()

    listener = asyncio.create_task(listen())
    await asyncio.wait_for(connected.wait(), 30)

    background_sent = 0
    stop = asyncio.Event()

    async def background_load() -> None:
        nonlocal background_sent
        tick = 0.05
        per_tick = max(1, int(args.background * tick))
        next_at = time.perf_counter()
        while not stop.is_set():
            for n in range(per_tick):
                patient_id, session_id = background[(background_sent + n) % len(background)]
                key, value = _reading(
                    patient_id, session_id, bp_systolic=124, bp_diastolic=80, heart_rate=72, spo2=98
                )
                await _send(producer, topics.MONITORING_VITALS, key, value, "VitalsRecorded")
            background_sent += per_tick
            next_at += tick
            await asyncio.sleep(max(0.0, next_at - time.perf_counter()))

    loader = asyncio.create_task(background_load())
    await asyncio.sleep(args.warmup)
    started, background_at_start = time.perf_counter(), background_sent
    for patient_id, session_id in measured:
        key, value = _reading(patient_id, session_id, bp_systolic=210, bp_diastolic=125)
        sent_at[patient_id] = time.perf_counter()
        await _send(producer, topics.MONITORING_VITALS, key, value, "VitalsRecorded")
        await asyncio.sleep(args.interval)
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(all_arrived.wait(), 30)
    elapsed = time.perf_counter() - started
    stop.set()
    await loader
    listener.cancel()
    await producer.stop()

    values = sorted(latencies.values())
    if not values:
        raise RuntimeError("no alert reached the inbox stream")

    def pct(p: float) -> float:
        return values[min(len(values) - 1, round(p / 100 * (len(values) - 1)))] * 1000

    return {
        "benchmark": "alert_latency",
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {
            "cores": os.cpu_count(),
            "python": host.python_version(),
            "kafka": kafka_version(),
            "load_average_at_end": list(os.getloadavg()),
        },
        "parameters": {
            "samples": args.samples,
            "interval_seconds": args.interval,
            "background_readings_per_second_target": args.background,
            "background_sessions": args.background_sessions,
            "partitions": args.partitions,
            "database": "sqlite",
        },
        "background_readings_per_second_achieved": round(
            (background_sent - background_at_start) / elapsed, 1
        ),
        "received": len(values),
        "latency_ms": {
            "p50": round(pct(50), 1),
            "p90": round(pct(90), 1),
            "p99": round(pct(99), 1),
            "max": round(values[-1] * 1000, 1),
            "mean": round(statistics.fmean(values) * 1000, 1),
        },
        "targets": {"p99_ms": 250, "met": pct(99) < 250},
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=100)
    parser.add_argument("--interval", type=float, default=0.25)
    parser.add_argument("--background", type=int, default=2000, help="readings/s")
    parser.add_argument("--background-sessions", type=int, default=100)
    parser.add_argument("--partitions", type=int, default=3)
    parser.add_argument("--warmup", type=float, default=5.0)
    args = parser.parse_args(argv)
    result = asyncio.run(run(args))
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")
    print(
        json.dumps(result["latency_ms"]),
        "background/s:",
        result["background_readings_per_second_achieved"],
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
