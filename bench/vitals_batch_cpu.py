"""Where the vitals batch path's CPU goes, without Kafka: vitals_throughput.py's records
through `VitalsBatchConsumer.process` on a fresh SQLite database, in batches of 5,000.

    uv run python bench/vitals_batch_cpu.py                 # 100k readings, 300 sessions
    uv run python bench/vitals_batch_cpu.py --readings 200000

Prints the CPU microseconds per record of the whole batch path (decode with the
contract, rules, statements, commit) and of each database step and the rules loop,
timed by wrapping them (`time.process_time`; the wrappers cost ~1 µs a batch), and the
read and write system calls the process made meanwhile (`/proc/self/io`: SQLite's page
reads and WAL writes, checkpoints included; unlike CPU time, load does not move them). Quicker
and steadier than the end-to-end benchmark on a shared machine: alternate it between
two versions of the code in one window (`PYTHONPATH=<other tree>/services/monitoring/src:
<other tree>/shared/src`) and compare. Not a test; nothing is written.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import os
import random
import tempfile
import time
from collections import defaultdict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from vitals_throughput import Sessions, open_sessions, readings

from kap_monitoring.adapters import store
from kap_monitoring.bootstrap import build
from kap_monitoring.config import MonitoringSettings
from kap_monitoring.entrypoints.vitals_batch import VitalsBatchConsumer
from kap_monitoring.handlers import vitals
from kap_shared.events.catalog import EVENT_TYPE_HEADER
from kap_shared.messaging.unit_of_work import UnitOfWork
from kap_shared.migrations import migrations_dir, upgrade
from kap_shared.settings import KafkaSettings

STEPS = (
    "existing_readings",
    "lock_and_load_sessions",
    "open_alerts",
    "insert_readings",
    "save_session_states",
)


@dataclass(frozen=True)
class Record:
    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: tuple[tuple[str, bytes], ...]


def io_syscalls() -> tuple[int, int]:
    """This process's read and write system calls so far (Linux; zeros elsewhere)."""
    try:
        fields = dict(line.split(": ") for line in Path("/proc/self/io").read_text().splitlines())
    except OSError:
        return 0, 0
    return int(fields["syscr"]), int(fields["syscw"])


def timed(owner: Any, name: str, spent: dict[str, float], label: str) -> None:
    """Replace `owner.name` (a coroutine function) by one adding its CPU to `spent`."""
    step: Callable[..., Awaitable[Any]] = getattr(owner, name)

    @functools.wraps(step)
    async def wrapper(*args: Any, **kwargs: Any) -> Any:
        started = time.process_time()
        try:
            return await step(*args, **kwargs)
        finally:
            spent[label] += time.process_time() - started

    setattr(owner, name, wrapper)


async def run(total: int, session_count: int, batch: int, reading_ids: str) -> None:
    sessions = Sessions(session_count, total)
    with tempfile.TemporaryDirectory(prefix="kap-bench-") as work:
        settings = MonitoringSettings(
            var_dir=Path(work),
            database_url=f"sqlite:///{work}/monitoring.db",
            kap_jwt_secret="bench-secret-that-is-long-enough-for-hs256",  # noqa: S106 - local run
            kafka=KafkaSettings(bootstrap_servers="127.0.0.1:1"),  # never connected
            log_level="WARNING",
        )
        url = settings.resolved_database_url
        await asyncio.to_thread(upgrade, url, migrations_dir("kap_monitoring"))
        await open_sessions(url, sessions)
        header = ((EVENT_TYPE_HEADER, b"VitalsRecorded"),)
        records = [
            Record("bench", 0, offset, key, value, header)
            for offset, (key, value) in enumerate(
                readings(sessions, total, random.Random(11), reading_ids)
            )
        ]
        spent: dict[str, float] = defaultdict(float)
        for name in STEPS:
            timed(store, name, spent, name)
        timed(vitals._SessionWork, "apply", spent, "rules (per session)")
        timed(UnitOfWork, "commit", spent, "commit")
        app = build(settings)
        consumer: VitalsBatchConsumer = app.state.vitals_consumer
        stored = 0
        reads, writes = io_syscalls()
        cpu, wall = time.process_time(), time.perf_counter()
        for start in range(0, len(records), batch):
            outcome = await consumer.process(records[start : start + batch])
            stored += outcome.stored
        cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
        reads_after, writes_after = io_syscalls()
        reads, writes = reads_after - reads, writes_after - writes
        await consumer.runtime.engine.dispose()
    per_record = 1e6 / len(records)
    print(f"load average {os.getloadavg()[0]:.2f}; {len(records)} records, {stored} stored")
    print(f"batch path: {cpu * per_record:.2f} µs CPU, {wall * per_record:.2f} µs wall a record")
    print(f"  system calls: {reads} reads, {writes} writes (SQLite's page reads and WAL writes)")
    for label, seconds in sorted(spent.items(), key=lambda item: -item[1]):
        print(f"  {label:<22} {seconds * per_record:6.2f} µs CPU a record")
    rest = cpu - sum(spent.values())
    print(f"  {'the rest (decode etc.)':<22} {rest * per_record:6.2f} µs CPU a record")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--readings", type=int, default=100_000)
    parser.add_argument("--sessions", type=int, default=300)
    parser.add_argument("--batch", type=int, default=5000)
    parser.add_argument(
        "--reading-ids",
        choices=("sequential", "uuid"),
        default="sequential",
        help="the readings' ids: <session>-<n> or random UUIDs (see vitals_throughput.readings)",
    )
    args = parser.parse_args()
    asyncio.run(run(args.readings, args.sessions, args.batch, args.reading_ids))


if __name__ == "__main__":
    main()
