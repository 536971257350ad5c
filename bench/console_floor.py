"""The treatment floor with 50 live chairs: the console's render time and the delay
from an event on a topic to the card changing in a real browser, each beside its
floor measured in the same run.

What one run does:
1. starts Kafka from the Maven jars, a stand-in for the four services
   (bench/console_stub.py: 50 checked-in dosing sessions answered from memory, so the
   console's own cost is measured, not the services' databases) and the console as
   separate processes;
2. render: GET /floor/<site> as a signed-in nurse, --renders times (each one is 4 API
   calls to the stand-in whatever the number of chairs: scheduling's and monitoring's
   site day, notifications' open escalations, intake's display names; counted from the
   console's /metrics) and the page; floor: the same 50 cards rendered by the template
   alone, in this process, no HTTP (the cost of the HTML itself);
3. live: Chromium (Debian's, driven by Playwright) keeps the floor open; per sample
   the stand-in's heart rate for one chair changes, then a VitalsRecorded for that
   chair is produced on kap.monitoring.vitals.v1; delay = when a MutationObserver in
   the page sees the card with the new value - just before the produce; floor: a bare
   aiokafka consumer's produce -> consume delay for the same kind of record;
4. appends p50/p90/p99/max, the machine, its load and the console's live-feed linger
   (`--linger-ms`, else the console's default CONSUMER_LINGER_MS) to
   bench/results/console_floor.json.

Goals (issue 12): render < 150 ms, event -> card p99 < 1 s.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform as host
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from playwright.async_api import async_playwright
from prometheus_client.parser import text_string_to_metric_families

from benchlib import cpu_model, record_run
from kap_console.config import ConsoleSettings
from kap_console.domain.floor import build_card
from kap_console.entrypoints.web import TEMPLATES
from kap_local import chromium
from kap_local.kafka import LocalKafka, ensure_jars, kafka_version
from kap_local.platform import free_port
from kap_shared.events import VitalsRecorded, topics
from kap_shared.events.monitoring import VitalsRecordedData
from kap_shared.messaging.topics_admin import ensure_topics
from kap_shared.settings import KafkaSettings

RESULTS = Path(__file__).parent / "results" / "console_floor.json"
SECRET = "bench-secret-long-enough-for-hs256-signing"  # noqa: S105 - a throw-away console
SITE = "site-bench"


def _stats(values: list[float]) -> dict[str, float]:
    ordered = sorted(values)

    def pct(p: float) -> float:
        return round(ordered[min(len(ordered) - 1, int(p * len(ordered)))], 1)

    return {
        "p50": pct(0.5),
        "p90": pct(0.9),
        "p99": pct(0.99),
        "max": round(ordered[-1], 1),
        "mean": round(statistics.mean(ordered), 1),
    }


def _wait_http(url: str, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise TimeoutError(url)


def _reading(session_id: str, value: int) -> bytes:
    n = int(session_id[1:])
    return VitalsRecorded(
        producer="bench",
        site_id=SITE,
        patient_id=f"p{n:03d}",
        correlation_id=str(uuid.uuid4()),
        data=VitalsRecordedData(
            session_id=session_id,
            reading_id=str(uuid.uuid4()),
            recorded_at=datetime.now(UTC),
            heart_rate=60 + value % 100,  # the card shows the stand-in's value
        ),
    ).to_json()


async def _service_calls(console: httpx.AsyncClient) -> float:
    """The console's calls to the services so far (its /metrics)."""
    text = (await console.get("/metrics")).text
    return sum(
        sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == "kap_console_service_calls_total"
    )


async def _static_render(stub: str, chairs: int, repeats: int) -> list[float]:
    """The floor: the same 50 cards through the template only (data fetched once)."""
    async with httpx.AsyncClient(base_url=stub) as client:
        bookings = (await client.get(f"/sites/{SITE}/sessions")).json()
        windows = (await client.get(f"/monitoring/sites/{SITE}/sessions")).json()
    template = TEMPLATES.env.get_template("partials/board.html")
    me = {"role": {"value": "nurse"}}
    timings = []
    for _ in range(repeats):
        started = time.perf_counter()
        now = datetime.now(UTC)
        cards = [
            build_card(b, w, [], now, "Chair P.") for b, w in zip(bookings, windows, strict=True)
        ]
        template.render(
            floor={"site_id": SITE, "cards": cards, "warnings": []}, me=me, now=now, csrf_token=""
        )
        timings.append((time.perf_counter() - started) * 1000)
    return timings


async def _bare_kafka(bootstrap: str, samples: int) -> list[float]:
    consumer = AIOKafkaConsumer(
        topics.MONITORING_VITALS,
        bootstrap_servers=bootstrap,
        group_id=f"bench-floor-{uuid.uuid4().hex[:6]}",
        auto_offset_reset="latest",
    )
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, enable_idempotence=True)
    await consumer.start()
    await producer.start()
    while not consumer.assignment():
        await consumer.getmany(timeout_ms=200)
    # Resolve every partition's position now: "latest" resolved lazily, after the first
    # produce, would skip that record and wait for it forever.
    partitions = consumer.assignment()
    await consumer.seek_to_end(*partitions)
    for partition in partitions:
        await consumer.position(partition)
    delays = []
    try:
        for i in range(samples):
            marker = f"bare-{i}".encode()
            started = time.time()
            await producer.send_and_wait(topics.MONITORING_VITALS, _reading("s000", i), key=marker)
            deadline = time.monotonic() + 60
            while True:
                batch = await consumer.getmany(timeout_ms=1000)
                if any(r.key == marker for records in batch.values() for r in records):
                    break
                if time.monotonic() > deadline:
                    raise TimeoutError(f"bare consumer never saw sample {i}")
            delays.append((time.time() - started) * 1000)
    finally:
        await producer.stop()
        await consumer.stop()
    return delays


async def run(args: argparse.Namespace) -> dict[str, Any]:
    load_at_start = list(os.getloadavg())
    ensure_jars()
    work = Path(tempfile.mkdtemp(prefix="kap-bench-console-"))
    kafka = LocalKafka(work_dir=work / "kafka", port=free_port())
    bootstrap = kafka.start()
    # The services create the contract's topics at start-up; the stand-in does not, and
    # the console's live reader subscribes by pattern (it never creates a topic).
    await ensure_topics(KafkaSettings(bootstrap_servers=bootstrap), partitions=6, replication=1)
    stub_port, console_port = free_port(), free_port()
    stub_url, console = f"http://127.0.0.1:{stub_port}", f"http://127.0.0.1:{console_port}"
    logs = (work / "stub.log").open("wb"), (work / "console.log").open("wb")
    stub = subprocess.Popen(  # noqa: ASYNC220 - set-up, before anything is measured
        [
            sys.executable,
            str(Path(__file__).parent / "console_stub.py"),
            "--port",
            str(stub_port),
            "--chairs",
            str(args.chairs),
        ],
        stdout=logs[0],
        stderr=subprocess.STDOUT,
    )
    env = {
        **os.environ,
        "HTTP_PORT": str(console_port),
        "VAR_DIR": str(work / "console"),  # its sign-in sessions database
        "KAFKA_BOOTSTRAP_SERVERS": bootstrap,
        "KAP_JWT_SECRET": SECRET,
        "DEV_SIGN_IN": "true",
        "DEV_CLINICIANS": f"rn-bench:nurse:{SITE}",
        "SESSION_COOKIE_SECURE": "false",
        "LOG_LEVEL": "WARNING",
        **{f"{s}_URL": stub_url for s in ("INTAKE", "SCHEDULING", "NOTIFICATIONS")},
        "MONITORING_URL": f"{stub_url}/monitoring",
        "CONSUMER_LINGER_MS": str(args.linger_ms),
    }
    console_proc = subprocess.Popen(  # noqa: ASYNC220 - set-up
        [sys.executable, "-m", "kap_console"], env=env, stdout=logs[1], stderr=subprocess.STDOUT
    )
    try:
        _wait_http(f"{stub_url}/alerts")
        # Set-up, not measured: a fresh broker's group coordinator can take minutes under load.
        _wait_http(f"{console}/readyz", timeout=300)
        floor_url = f"{console}/floor/{SITE}"

        # -- render at the BFF ------------------------------------------------------------
        async with httpx.AsyncClient(base_url=console, timeout=30) as client:
            signed = await client.post("/sign-in/dev", data={"clinician_id": "rn-bench"})
            assert signed.status_code == 303, signed.text
            for _ in range(3):  # warm-up: connection pools, template cache
                await client.get(f"/floor/{SITE}")
            calls_before = await _service_calls(client)
            renders = []
            for _ in range(args.renders):
                started = time.perf_counter()
                page = await client.get(f"/floor/{SITE}")
                renders.append((time.perf_counter() - started) * 1000)
                assert page.status_code == 200
                assert page.text.count('class="card ') == args.chairs
                assert "Chair P." in page.text  # intake's display names are on the cards
            calls_per_board = (await _service_calls(client) - calls_before) / args.renders
        static = await _static_render(stub_url, args.chairs, args.renders)

        # -- event on the topic -> card changed in the browser ----------------------------
        producer = AIOKafkaProducer(bootstrap_servers=bootstrap, enable_idempotence=True)
        await producer.start()
        delays: list[float] = []
        async with async_playwright() as p:
            browser = await chromium.launch(p)
            tab = await browser.new_page(viewport={"width": 1280, "height": 800})
            await tab.goto(f"{console}/sign-in")
            await tab.get_by_label("Seeded clinician").select_option("rn-bench")
            await tab.get_by_role("button", name="Sign in as this clinician").click()
            await tab.goto(floor_url)
            await tab.wait_for_selector("body[data-live-connected='true']")
            await tab.evaluate(
                """() => { window.__seen = {};
                  new MutationObserver(() => {
                    document.querySelectorAll('.card').forEach(c => {
                      const m = c.textContent.match(/HR (\\d+)\\/min/);
                      if (m && !(m[1] in window.__seen)) { window.__seen[m[1]] = Date.now(); }
                    });
                  }).observe(document.body, {subtree: true, childList: true}); }"""
            )
            async with httpx.AsyncClient(base_url=stub_url) as stub_client:
                for i in range(args.samples):
                    session_id, value = f"s{i % args.chairs:03d}", 1000 + i
                    await stub_client.post(f"/_bump/{session_id}", params={"value": value})
                    started = time.time()
                    await producer.send_and_wait(
                        topics.MONITORING_VITALS,
                        _reading(session_id, value),
                        key=f"p{i % args.chairs:03d}".encode(),
                    )
                    await tab.wait_for_function(
                        f"() => window.__seen && '{value}' in window.__seen", timeout=30_000
                    )
                    seen = await tab.evaluate(f"() => window.__seen['{value}']")
                    delays.append(seen - started * 1000)
                    await asyncio.sleep(args.interval)
            await browser.close()
        await producer.stop()
        bare = await _bare_kafka(bootstrap, args.samples)
    finally:
        console_proc.terminate()
        stub.terminate()
        console_proc.wait(timeout=30)
        stub.wait(timeout=30)
        kafka.stop()
    return {
        "benchmark": "console_floor",
        "variant": args.variant,
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {
            "cpu": cpu_model(),
            "cores": os.cpu_count(),
            "python": host.python_version(),
            "kafka": kafka_version(),
            "chromium": subprocess.run(  # noqa: ASYNC221 - after the measurements
                [chromium.CHROMIUM, "--version"], capture_output=True, text=True, check=False
            ).stdout.strip(),
            "load_average_at_start": load_at_start,
            "load_average_at_end": list(os.getloadavg()),
        },
        "parameters": {
            "chairs": args.chairs,
            "renders": args.renders,
            "samples": args.samples,
            "interval_seconds": args.interval,
            "console_consumer_linger_ms": args.linger_ms,
            "services": "in-memory stand-in (bench/console_stub.py), batch read endpoints",
        },
        "render_ms": {"console_floor_page": _stats(renders), "floor_template_only": _stats(static)},
        "service_calls_per_board": calls_per_board,
        "event_to_card_ms": {
            "browser_card_changed": _stats(delays),
            "floor_bare_kafka": _stats(bare),
        },
        "goals": {"render_ms": 150, "event_to_card_p99_ms": 1000},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--chairs", type=int, default=50)
    parser.add_argument("--renders", type=int, default=50)
    parser.add_argument("--samples", type=int, default=100)
    parser.add_argument("--interval", type=float, default=0.1)
    parser.add_argument(
        "--linger-ms",
        type=int,
        default=ConsoleSettings.model_fields["consumer_linger_ms"].default,
        help="the console's live feed's CONSUMER_LINGER_MS (default: the console's)",
    )
    parser.add_argument("--variant", default="recorded", help="label of this run in the results")
    args = parser.parse_args()
    result = asyncio.run(run(args))
    record_run(RESULTS, "console_floor", result)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
