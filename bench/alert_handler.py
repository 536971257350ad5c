"""What notifications' alert transaction costs, in counts that do not depend on the
machine's load: one critical VitalsAlert (KET-MON-BP, the alert benchmark's) at a time
through notifications' real consumer path (`EventConsumer.process` on a SQLite file,
the service's engine set-up), with a connected inbox stream taking each pushed item
as `GET /inbox/stream` does.

Per alert: SQL statements, Python function calls (cProfile), CPU time, and the
event-loop turns from the start of the handler to the stream's task holding the item;
`--profile` prints cProfile's top functions. Not a test: no figure is asserted.

    uv run python bench/alert_handler.py --alerts 300
    uv run python bench/alert_handler.py --alerts 300 --profile
    uv run python bench/alert_handler.py --alerts 100 --pause 0.25
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import json
import pstats
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import event as sa_event

from benchlib import announced_im_session
from kap_notifications.adapters.hub import InboxHub
from kap_notifications.adapters.tables import REGISTRY
from kap_notifications.config import NotificationsSettings
from kap_notifications.handlers.notify import Notifier
from kap_shared.db import create_engine, create_tables, session_factory
from kap_shared.events import VitalsAlert
from kap_shared.events.catalog import decode_as
from kap_shared.events.enums import Severity
from kap_shared.events.monitoring import VitalsAlertData
from kap_shared.logging import configure_logging
from kap_shared.messaging.consumer import EventConsumer

SITE, PRESCRIBER, THERAPIST = "site-bench", "rx-bench", "th-bench"


def _common(patient_id: str, producer: str) -> dict[str, str]:
    return {
        "producer": producer,
        "site_id": SITE,
        "patient_id": patient_id,
        "correlation_id": f"episode-{patient_id}",
    }


def _alert(patient_id: str, session_id: str) -> bytes:
    """A critical VitalsAlert as monitoring's relay sends it (the bench's BP 210/125)."""
    return VitalsAlert(
        **_common(patient_id, "monitoring"),
        data=VitalsAlertData(
            alert_id=f"va-{patient_id}",
            session_id=session_id,
            severity=Severity.CRITICAL,
            rule_id="KET-MON-BP",
            metric="bp_systolic",
            value=210,
            threshold=200,
            message="BP 210/125",
        ),
    ).to_json()


class LoopTurns:
    """Counts the event loop's iterations (selector polls) while armed."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        selector: Any = loop._selector  # type: ignore[attr-defined]
        self.count = 0
        original = selector.select

        def select(timeout: float | None = None) -> Any:
            self.count += 1
            return original(timeout)

        selector.select = select


async def _prepare(alerts: int, prefix: str) -> tuple[Any, InboxHub, EventConsumer, list[bytes]]:
    """A fresh notifications database with `alerts` patients' teams; their alerts."""
    work = Path(tempfile.mkdtemp(prefix="kap-alert-handler-"))
    engine = create_engine(f"sqlite+aiosqlite:///{work / 'notifications.db'}")
    await create_tables(engine, [REGISTRY.metadata])
    hub = InboxHub()
    notifier = Notifier(rules=NotificationsSettings().notification_rules, hub=hub)
    consumer = EventConsumer(
        group_id="notifications", sessions=session_factory(engine), handlers=notifier.handlers()
    )
    patients = [(f"pt-{prefix}-{n}", f"sess-{prefix}-{n}") for n in range(alerts)]
    for patient_id, session_id in patients:
        announced = announced_im_session(
            patient_id,
            session_id,
            site_id=SITE,
            prescriber_id=PRESCRIBER,
            therapist_id=THERAPIST,
            checked_in_at=datetime.now(UTC),
        )
        for _key, value, event_type in announced:  # the plan and session give the team
            await consumer.process(decode_as(event_type, value))
    return engine, hub, consumer, [_alert(p, s) for p, s in patients]


async def run(args: argparse.Namespace) -> dict[str, Any]:
    engine, hub, consumer, alerts = await _prepare(args.alerts, "m")
    statements = 0

    def count(*_: Any) -> None:
        nonlocal statements
        statements += 1

    sa_event.listen(engine.sync_engine, "before_cursor_execute", count)
    subscription = hub.subscribe(PRESCRIBER)
    turns = LoopTurns(asyncio.get_running_loop())
    received: list[int] = []
    arrived = asyncio.Event()

    async def stream() -> None:  # the inbox stream's task: waits for the next pushed item
        while True:
            if await subscription.next(30) is not None:
                received.append(turns.count)
                arrived.set()

    reader = asyncio.create_task(stream())
    await asyncio.sleep(0)
    profiler = cProfile.Profile()
    loop_turns = 0
    cpu = time.process_time()
    wall = time.perf_counter()
    profiler.enable()
    for value in alerts:
        started = turns.count
        await consumer.process(decode_as("VitalsAlert", value))
        await arrived.wait()
        arrived.clear()
        loop_turns += received.pop() - started
    profiler.disable()
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    reader.cancel()
    stats = pstats.Stats(profiler)
    calls = sum(v[1] for v in stats.stats.values())  # type: ignore[attr-defined]
    n = len(alerts)
    result = {
        "alerts": n,
        "statements_per_alert": round(statements / n, 2),
        "python_calls_per_alert": round(calls / n),
        "event_loop_turns_to_stream_per_alert": round(loop_turns / n, 2),
        "cpu_ms_per_alert_under_cprofile": round(cpu / n * 1000, 3),
        "wall_ms_per_alert_under_cprofile": round(wall / n * 1000, 3),
    }
    if args.profile:
        stats.sort_stats(args.sort).print_stats(args.top)
    await engine.dispose()
    return result


async def timed(args: argparse.Namespace) -> dict[str, float]:
    """CPU time per alert without the profiler (a fresh database each): back to back,
    and with `--pause` seconds between alerts, as they come at a clinic (the process idle
    in between, its caches taken by whatever else ran: bench/README.md, round 14)."""
    result = {"cpu_ms_per_alert": await _cpu_per_alert(args.alerts, "t", 0.0)}
    if args.pause:
        result["cpu_ms_per_spaced_alert"] = await _cpu_per_alert(args.alerts, "s", args.pause)
    return result


async def _cpu_per_alert(alerts: int, prefix: str, pause: float) -> float:
    engine, _, consumer, values = await _prepare(alerts, prefix)
    cpu = 0.0
    for value in values:
        if pause:
            await asyncio.sleep(pause)
        started = time.thread_time()
        await consumer.process(decode_as("VitalsAlert", value))
        cpu += time.thread_time() - started
    await engine.dispose()
    return round(cpu / len(values) * 1000, 3)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--alerts", type=int, default=300)
    parser.add_argument("--profile", action="store_true", help="print cProfile's top functions")
    parser.add_argument("--sort", default="tottime")
    parser.add_argument("--top", type=int, default=40)
    parser.add_argument("--log-level", default="WARNING", help="as the alert benchmark's services")
    parser.add_argument(
        "--pause", type=float, default=0.0, help="also time alerts this many seconds apart"
    )
    args = parser.parse_args(argv)
    configure_logging(args.log_level)
    result = asyncio.run(run(args))
    result |= asyncio.run(timed(args))
    print(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
