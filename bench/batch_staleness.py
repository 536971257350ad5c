"""Batch staleness: how old the records of a batch consumer's batch are when its work
ends, with aiokafka's prefetch as it is and with a "top-up" read (issue 13, alert path).

Why: the alert benchmark's hop 1 (a critical reading produced -> monitoring's rule
evaluated) is about three vitals batches long, not one. aiokafka's fetcher sends the
next fetch the moment `getmany` drains its buffer, the broker answers at once (there is
data), and the answer waits in the buffer while the batch is processed. The next
`getmany` therefore returns what was produced during the *previous* batch: a record
waits for the batch in progress, then for one whole batch of older records, then for
its own. A second, short `getmany` right after the first ("top-up") collects the answer
to the fetch the first one triggered, so a batch holds what was produced up to its
start. Its price is the wait for that answer (about a broker round trip) once a batch,
while the consumer does nothing: recorded per batch as `top_up_wait_ms`, beside the
cycle (`cycle_ms`, the run's seconds over its batches). monitoring's vitals consumer
does this read (`kap_shared.messaging.batches.top_up`, `VITALS_BATCH_TOP_UP_MS`) for a
stale batch only, one whose newest record is at least that old: with --batch-ms above the
top-up's timeout, as here, every batch is (bench/README.md, round 13).

What one run does: starts Kafka from the Maven jars; a producer writes --rate records/s
(each carrying its send time) to a fresh topic of 3 partitions; a bare
`AIOKafkaConsumer` loop takes batches with `getmany` (the vitals consumer's settings:
20 ms poll, up to 5000 records) and "works" --batch-ms per batch (an `asyncio.sleep`:
no CPU, so the figure is the pipeline's, not the machine's); each record's age at the
end of its batch's work is recorded. The two variants alternate, twice each, in one
run; p50/p90/p99 per variant go to bench/results/batch_staleness.json with the load.

    uv run python bench/batch_staleness.py                  # 60 ms batches, 10 ms top-up
    uv run python bench/batch_staleness.py --batch-ms 30 --top-up-ms 5
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import time
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from benchlib import cpu_model
from kap_local.kafka import LocalKafka, kafka_version

RESULTS = Path(__file__).parent / "results" / "batch_staleness.json"
PARTITIONS = 3


def percentiles(ages: list[float]) -> dict[str, float]:
    ordered = sorted(ages)

    def at(share: float) -> float:
        return round(ordered[min(len(ordered) - 1, int(share * len(ordered)))] * 1000, 1)

    return {"n": len(ordered), "p50": at(0.5), "p90": at(0.9), "p99": at(0.99)}


async def produce(bootstrap: str, topic: str, rate: int, stop: asyncio.Event) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=0)
    await producer.start()
    sent, started = 0, time.perf_counter()
    try:
        while not stop.is_set():
            if (wait := started + sent / rate - time.perf_counter()) > 0:
                await asyncio.sleep(wait)
            body = json.dumps({"sent": time.time()}).encode()
            await producer.send(topic, body, key=str(sent % 100).encode())
            sent += 1
    finally:
        await producer.stop()


async def consume(
    bootstrap: str, topic: str, args: argparse.Namespace, top_up: bool
) -> tuple[list[float], int, float]:
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        group_id=f"staleness-{topic}",
        auto_offset_reset="latest",
    )
    await consumer.start()
    ages: list[float] = []
    batches = 0
    waited = 0.0  # in the top-up reads: the consumer's dead time, the price of the top-up
    try:
        await consumer.getmany(timeout_ms=1000)  # assignment, and the first records
        ends = time.perf_counter() + args.seconds
        while time.perf_counter() < ends:
            batch = await consumer.getmany(timeout_ms=20, max_records=5000)
            if top_up and batch:
                started = time.perf_counter()
                fresher = await consumer.getmany(timeout_ms=args.top_up_ms, max_records=5000)
                waited += time.perf_counter() - started
                for partition, records in fresher.items():
                    batch.setdefault(partition, []).extend(records)
            records = [record for records in batch.values() for record in records]
            if not records:
                continue
            batches += 1
            await asyncio.sleep(args.batch_ms / 1000)  # the batch's work
            done = time.time()
            ages.extend(done - json.loads(record.value or b"{}")["sent"] for record in records)
    finally:
        await consumer.stop()
    return ages, batches, waited


async def measure(args: argparse.Namespace) -> dict[str, Any]:
    runs: list[dict[str, Any]] = []
    with LocalKafka(partitions=PARTITIONS) as kafka:
        admin = AIOKafkaAdminClient(bootstrap_servers=kafka.bootstrap)
        await admin.start()
        try:
            for top_up in (False, True) * args.rounds:
                topic = f"staleness-{int(top_up)}-{time.time_ns()}"
                await admin.create_topics([NewTopic(topic, PARTITIONS, 1)])
                stop = asyncio.Event()
                producing = asyncio.create_task(produce(kafka.bootstrap, topic, args.rate, stop))
                try:
                    ages, batches, waited = await consume(kafka.bootstrap, topic, args, top_up)
                finally:
                    stop.set()
                    await producing
                run = {
                    "top_up": top_up,
                    "batches": batches,
                    "cycle_ms": round(args.seconds / batches * 1000, 1),
                    "top_up_wait_ms": round(waited / batches * 1000, 2),
                    **percentiles(ages),
                }
                runs.append(run)
                print(json.dumps(run), flush=True)
        finally:
            await admin.close()
    summary = {}
    for top_up, name in ((False, "as_is"), (True, "top_up")):
        mine = [run for run in runs if run["top_up"] is top_up]
        summary[name] = {
            key: round(statistics.mean(run[key] for run in mine), 1)
            for key in ("p50", "p90", "p99", "cycle_ms", "top_up_wait_ms")
        }
    return {"runs": runs, "mean_of_runs_ms": summary}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=int, default=2000, help="records/s")
    parser.add_argument("--batch-ms", type=float, default=60.0, help="work per batch")
    parser.add_argument("--top-up-ms", type=int, default=10, help="the top-up read's timeout")
    parser.add_argument("--seconds", type=float, default=8.0, help="per variant and round")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--no-record", action="store_true", help="print only")
    args = parser.parse_args(argv)
    load_before = os.getloadavg()
    measured = asyncio.run(measure(args))
    result = {
        "benchmark": "batch_staleness",
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {"cpu": cpu_model(), "cores": os.cpu_count()},
        "load_average": {"before": load_before, "after": os.getloadavg()},
        "versions": {"aiokafka": metadata.version("aiokafka"), "kafka": kafka_version()},
        "parameters": vars(args),
        **measured,
    }
    print(json.dumps(result["mean_of_runs_ms"], indent=1))
    if not args.no_record:
        RESULTS.write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
