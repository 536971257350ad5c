"""HTTP under load: monitoring's `POST /sessions/{id}/vitals` and `GET /sessions/{id}`
at a fixed request rate, from a second process, against monitoring as a real process.

    uv run python bench/http_load.py                     # the recorded run: 200 req/s, 60 s
    uv run python bench/http_load.py --seconds 20 --profile --no-write   # where the time goes

Instructions a request, which the machine's load does not move (round 24): run one kind
under callgrind with 20 and with 220 requests; the difference / 200 is that kind's.

    valgrind --tool=callgrind --callgrind-out-file=/dev/null .venv/bin/python \
        bench/http_load.py --per-request 220 --only get_session --no-write

`--only floor_get_session` (and `floor_post_vitals`) counts the same requests to the
floor's app (step 3 below) through the same in-process client: the framework's share.

What one run does:
1. starts Kafka from the Maven jars and monitoring alone as an OS process (uvicorn,
   SQLite, kap_local.platform; with --profile under cProfile);
2. opens dosing sessions as scheduling would announce them (TreatmentPlanCreated,
   SessionScheduled, SessionCheckedIn on kap.scheduling.events.v1) and gives each its
   first dose over HTTP, so every reading runs the in-session rules;
3. the floor first (unless --no-floor): bench/http_floor.py, FastAPI alone on the
   services' uvicorn settings, answering the same requests with monitoring's own
   answers, as its own process under the same load as step 4, so the report sets
   monitoring beside what the framework costs on this machine in this hour
   (`floor`, `against_floor`);
4. a load generator in a SECOND process alternates a new reading (POST, a fresh
   reading_id, as a nurse charting) and a session read (GET) over the sessions, open
   loop (request n is due at start + n / rate whether or not earlier ones have
   answered), after a warm-up. By default vegeta (Go, bench/http_vegeta.py: a small
   fraction of a core at 200 req/s; a due request waits for one of 100 workers, and
   those never sent by the end are errors); `--generator python` is asyncio + httpx
   (a due request beyond 100 in flight is not sent: an error). The JSON says which
   ran and what CPU it used;
5. latency is measured from each request's due time to its response (so queueing in
   the generator counts too) and, separately, from its actual send; p50/p90/p99/max
   per endpoint, errors (any status other than 201/200, or no answer) and the rate
   achieved; monitoring's CPU over the measured window and the load average;
6. writes bench/results/http_load.json.

Not a test: numbers depend on the machine and its load, which are recorded with them.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import cProfile
import io
import json
import os
import pstats
import resource
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from aiokafka import AIOKafkaProducer
from http_vegeta import (
    VERSION,
    attack_command,
    find_vegeta,
    read_results,
    reading_body,
    write_targets,
)

from benchlib import announced_im_session, cpu_model, first_dose, running_cpu_seconds
from kap_local.kafka import LocalKafka, ensure_jars, kafka_version
from kap_local.platform import Platform, ServiceProcess
from kap_local.processes import free_port
from kap_shared.auth import mint_token
from kap_shared.events import topics

RESULTS = Path(__file__).parent / "results" / "http_load.json"
SECRET = "bench-secret-long-enough-for-hs256-signing"  # noqa: S105 - a throw-away platform
SITE = "site-bench"
GOAL_P99_MS = 25.0
PY_SPY_VERSION = "0.4.3"  # run through uvx: not a dependency of the workspace
MAX_IN_FLIGHT = 100  # the client's connections; beyond, a due request is not sent
NOT_SENT = -2  # status recorded for a request not sent (MAX_IN_FLIGHT reached)
# The floor's kinds: the same requests to bench/http_floor.py's app (FastAPI alone).
PER_REQUEST_KINDS = ("post_vitals", "get_session", "floor_post_vitals", "floor_get_session")


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


def _opening_events(n: int) -> list[tuple[bytes, bytes, str]]:
    patient, session = f"pt-h-{n}", f"sess-h-{n}"
    checked_in_at = datetime.now(UTC) - timedelta(minutes=5)
    return announced_im_session(
        patient,
        session,
        site_id=SITE,
        prescriber_id="rx-bench",
        therapist_id="th-bench",
        checked_in_at=checked_in_at,
    )


async def open_sessions(bootstrap: str, base_url: str, token: str, count: int) -> list[str]:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, enable_idempotence=True)
    await producer.start()
    try:
        for n in range(count):
            for key, value, kind in _opening_events(n):
                await producer.send(
                    topics.SCHEDULING_EVENTS,
                    value,
                    key=key,
                    headers=[("event_type", kind.encode()), ("content-type", b"application/json")],
                )
        await producer.flush()
    finally:
        await producer.stop()
    sessions = [f"sess-h-{n}" for n in range(count)]
    headers = {"Authorization": f"Bearer {token}"}
    async with httpx.AsyncClient(base_url=base_url, headers=headers, timeout=30) as api:
        for session_id in sessions:
            await first_dose(api, session_id)
    return sessions


# -- the load generator (the second process) ---------------------------------------------


async def post_reading(client: httpx.AsyncClient, session_id: str, n: int) -> httpx.Response:
    """A new reading (a fresh reading_id), as a nurse charts it."""
    return await client.post(
        f"/sessions/{session_id}/vitals", json=reading_body(n, datetime.now(UTC))
    )


async def _generate(
    base_url: str, token: str, sessions: list[str], rate: float, seconds: float, warmup: float
) -> dict[str, Any]:
    limits = httpx.Limits(max_connections=MAX_IN_FLIGHT, max_keepalive_connections=MAX_IN_FLIGHT)
    headers = {"Authorization": f"Bearer {token}"}
    samples: list[tuple[str, float, float, float, int]] = []  # kind, due, sent, done, status
    lag_max = 0.0
    async with httpx.AsyncClient(
        base_url=base_url, headers=headers, timeout=5, limits=limits
    ) as client:

        async def one(n: int, due: float) -> None:
            session_id = sessions[(n // 2) % len(sessions)]
            sent = time.perf_counter()
            status = 0
            try:
                if n % 2 == 0:
                    response = await post_reading(client, session_id, n)
                else:
                    response = await client.get(f"/sessions/{session_id}")
                status = response.status_code
            except httpx.HTTPError:
                status = -1
            kind = "post_vitals" if n % 2 == 0 else "get_session"
            samples.append((kind, due, sent, time.perf_counter(), status))

        tasks: set[asyncio.Task[None]] = set()
        total = int(rate * (seconds + warmup))
        start = time.perf_counter() + 0.5
        for n in range(total):
            due = start + n / rate
            delay = due - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            else:
                lag_max = max(lag_max, -delay)
            if len(tasks) >= MAX_IN_FLIGHT:
                # The server is saturated: an open loop would pile up requests without
                # bound (and the generator with them); this one counts as an error.
                kind = "post_vitals" if n % 2 == 0 else "get_session"
                samples.append((kind, due, due, due, NOT_SENT))
            else:
                task = asyncio.create_task(one(n, due))
                tasks.add(task)
                task.add_done_callback(tasks.discard)
            if n % int(rate * 5) == 0:
                print(f"generator: {n} due, {len(samples)} done", file=sys.stderr)
        if tasks:
            await asyncio.wait(tasks, timeout=15)
        for task in list(tasks):  # still unanswered: errors too
            task.cancel()
        print(f"generator: {len(samples)} done, {len(tasks)} unanswered", file=sys.stderr)
    measured_from = start + warmup
    kept = [s for s in samples if s[1] >= measured_from]
    return {"samples": kept, "generator_max_lag_ms": round(lag_max * 1000, 1)}


def generator_main(spec_path: str) -> int:
    """The second process's entry point: `http_load.py --generate SPEC.json`."""
    spec = json.loads(Path(spec_path).read_text())
    outcome = asyncio.run(
        _generate(
            spec["base_url"],
            spec["token"],
            spec["sessions"],
            spec["rate"],
            spec["seconds"],
            spec["warmup"],
        )
    )
    Path(spec["output"]).write_text(json.dumps(outcome))
    return 0


def _percentiles(values: list[float]) -> dict[str, float]:
    if not values:
        return {}
    values = sorted(values)

    def pct(p: float) -> float:
        return round(values[min(len(values) - 1, round(p / 100 * (len(values) - 1)))] * 1000, 2)

    return {"p50": pct(50), "p90": pct(90), "p99": pct(99), "max": round(values[-1] * 1000, 2)}


def summarize(
    samples: list[tuple[str, float, float, float, int]], seconds: float
) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for kind, ok in (("post_vitals", (201,)), ("get_session", (200,)), ("all", (200, 201))):
        chosen = [s for s in samples if kind == "all" or s[0] == kind]
        errors: dict[str, int] = {}
        for s in chosen:
            if s[4] not in ok:
                errors[str(s[4])] = errors.get(str(s[4]), 0) + 1
        out[kind] = {
            "requests": len(chosen),
            "rate_achieved": round(len(chosen) / seconds, 1),
            "errors": sum(errors.values()),
            "errors_by_status": errors,
            "unanswered_or_not_sent": sum(1 for s in chosen if s[4] < 0),
            # over the requests that got an answer (errors are counted above)
            "latency_ms_from_due": _percentiles([s[3] - s[1] for s in chosen if s[4] > 0]),
            "latency_ms_from_send": _percentiles([s[3] - s[2] for s in chosen if s[4] > 0]),
        }
    return out


# -- one request at a time, in-process: what each costs -------------------------------------


async def per_request_cost(
    count: int,
    profile_dir: Path | None,
    gap: float = 0.0,
    kinds: tuple[str, ...] = PER_REQUEST_KINDS,
) -> dict[str, Any]:
    """CPU per request of each kind, one request at a time through the ASGI app in this
    process (no Kafka: the broker is unreachable, the outbox waits): the cost of the
    request itself, which the machine's load hardly changes, unlike the latencies.
    `time.process_time` counts every thread (aiosqlite's included), `thread_time` the
    event loop's. With `profile_dir`, a cProfile of the main thread per kind. With `gap`,
    the process idles that many seconds between requests, as at a clinic's rate: the
    wall time of each request is then that of a process woken from idle (its CPU time
    includes whatever ran during the gaps). `kinds`: which requests to time (under
    callgrind, one kind at a time: the difference between two counts is that kind's
    instructions a request); the `floor_` kinds send the same requests to
    bench/http_floor.py's app, FastAPI alone."""
    from http_floor import floor_app

    from kap_monitoring.bootstrap import build
    from kap_monitoring.config import MonitoringSettings
    from kap_monitoring.entrypoints.stream import HANDLERS
    from kap_shared.events import decode
    from kap_shared.messaging.consumer import EventConsumer

    work = Path(tempfile.mkdtemp(prefix="kap-bench-http-cost-"))
    settings = MonitoringSettings(
        var_dir=work,
        kap_jwt_secret=SECRET,
        db_schema="create_all",
        log_level="WARNING",
        kafka={"bootstrap_servers": "127.0.0.1:1"},  # unreachable: no broker needed
    )
    app = build(settings)
    sessions = [f"sess-h-{n}" for n in range(5)]
    out: dict[str, Any] = {"requests_per_kind": count, "gap_seconds": gap}
    async with app.router.lifespan_context(app):
        runtime = app.state.runtime
        if not runtime.database_ready:  # the lifespan prepares the schema first
            raise RuntimeError("monitoring's database is not ready")
        consumer = EventConsumer(
            group_id="monitoring", sessions=runtime.sessions, handlers=HANDLERS
        )
        for n in range(len(sessions)):
            for _key, value, _kind in _opening_events(n):
                await consumer.handle(decode(topics.SCHEDULING_EVENTS, value))
        token = mint_token(SECRET, sub="rn-bench", role="nurse", sites=[SITE])
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app),
            base_url="http://monitoring",
            headers={"Authorization": f"Bearer {token}"},
        ) as client:
            for session_id in sessions:
                await first_dose(client, session_id)

            # The floor (bench/http_floor.py) in-process too: FastAPI alone, answering
            # with monitoring's own answers, through the same client.
            floor = httpx.AsyncClient(
                transport=httpx.ASGITransport(app=floor_app(await _answers(client, sessions[0]))),
                base_url="http://floor",
                headers={"Authorization": f"Bearer {token}"},
            )

            def post_to(api: httpx.AsyncClient) -> Callable[[int], Awaitable[httpx.Response]]:
                async def post(n: int) -> httpx.Response:
                    return await post_reading(api, sessions[n % len(sessions)], n)

                return post

            def get_from(api: httpx.AsyncClient) -> Callable[[int], Awaitable[httpx.Response]]:
                async def get(n: int) -> httpx.Response:
                    return await api.get(f"/sessions/{sessions[n % len(sessions)]}")

                return get

            calls = {
                "post_vitals": post_to(client),
                "get_session": get_from(client),
                "floor_post_vitals": post_to(floor),
                "floor_get_session": get_from(floor),
            }
            async with floor:
                for kind in kinds:
                    call = calls[kind]
                    for n in range(20):  # warm-up: caches, compiled statements
                        await call(n)
                    profiler = cProfile.Profile() if profile_dir else None
                    cpu, loop_cpu, wall = (
                        time.process_time(),
                        time.thread_time(),
                        time.perf_counter(),
                    )
                    if profiler:
                        profiler.enable()
                    walls: list[float] = []
                    loop_cpus: list[float] = []  # the event loop's CPU, this request only
                    for n in range(count):
                        if gap:
                            await asyncio.sleep(gap)
                        sent, sent_cpu = time.perf_counter(), time.thread_time()
                        response = await call(n)
                        walls.append(time.perf_counter() - sent)
                        loop_cpus.append(time.thread_time() - sent_cpu)
                        if response.status_code not in (200, 201):
                            raise RuntimeError(f"{kind}: {response.status_code} {response.text}")
                    if profiler and profile_dir:
                        profiler.disable()
                        profiler.dump_stats(profile_dir / f"{kind}.prof")
                    out[kind] = {
                        "cpu_ms": round((time.process_time() - cpu) * 1000 / count, 2),
                        "event_loop_cpu_ms": round(
                            (time.thread_time() - loop_cpu) * 1000 / count, 2
                        ),
                        "wall_ms": round(
                            (time.perf_counter() - wall - gap * count) * 1000 / count, 2
                        ),
                        "wall_ms_each": _percentiles(walls),
                        "event_loop_cpu_ms_each": _percentiles(loop_cpus),
                        "profiled": profiler is not None,
                    }
                    log(f"{kind}: {out[kind]}")
    return out


# -- monitoring as a process ----------------------------------------------------------------


# uvicorn re-raises SIGTERM after its graceful shutdown; with the default handler the
# process would die before cProfile writes, so the handler it restores is a no-op.
# The profile starts at SIGUSR1, which the bench sends when the measured window starts
# (start-up and the sessions' set-up left out).
PROFILED_MAIN = """
import cProfile, signal, sys
from kap_monitoring.__main__ import main
signal.signal(signal.SIGTERM, lambda *_: None)
profiler = cProfile.Profile()
signal.signal(signal.SIGUSR1, lambda *_: profiler.enable())
try:
    main()
finally:
    profiler.disable()
    profiler.dump_stats(sys.argv[1])
"""


def start_profiled(service: ServiceProcess, profile_path: Path) -> None:
    """As ServiceProcess.start, under cProfile (written when the process exits)."""
    service.log_path.parent.mkdir(parents=True, exist_ok=True)
    log_file = service.log_path.open("ab")
    service._log_file = log_file
    service.proc = subprocess.Popen(
        [sys.executable, "-c", PROFILED_MAIN, str(profile_path)],
        env=service.env,
        stdout=log_file,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


GENERATORS = {
    "vegeta": f"a second OS process, vegeta {VERSION} (Go), open loop, "
    f"at most {MAX_IN_FLIGHT} in flight (a due request waits for a free worker)",
    "python": "a second OS process, asyncio + httpx, open loop, "
    f"at most {MAX_IN_FLIGHT} in flight (a due request beyond is not sent: an error)",
}
Collect = Callable[[], dict[str, Any]]


def _children_cpu() -> float:
    """CPU of this process's waited-for children (the generator, once it exits)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _generator(
    args: argparse.Namespace, work: Path, base_url: str, token: str, sessions: list[str]
) -> tuple[list[str], Collect]:
    """The generator's command line, and what reads its samples once it has exited."""
    work.mkdir(parents=True, exist_ok=True)
    total = int(args.rate * (args.seconds + args.warmup))
    if args.generator == "vegeta":
        vegeta = find_vegeta()
        if vegeta is None:
            raise RuntimeError("vegeta is not installed (see bench/http_vegeta.py)")
        targets, results = work / "targets.jsonl", work / "vegeta.bin"
        write_targets(targets, base_url, token, sessions, args.rate, total)

        def collect_vegeta() -> dict[str, Any]:
            samples, lag = read_results(vegeta, results, args.rate, total, NOT_SENT)
            measured_from = samples[0][1] + args.warmup if samples else 0.0
            kept = [s for s in samples if s[1] >= measured_from]
            return {"samples": kept, "generator_max_lag_ms": lag}

        command = attack_command(vegeta, targets, results, args.rate, total, MAX_IN_FLIGHT)
        return command, collect_vegeta
    spec, output = work / "generator.json", work / "generator-result.json"
    spec.write_text(
        json.dumps(
            {
                "base_url": base_url,
                "token": token,
                "sessions": sessions,
                "rate": args.rate,
                "seconds": args.seconds,
                "warmup": args.warmup,
                "output": str(output),
            }
        )
    )

    def collect_python() -> dict[str, Any]:
        outcome: dict[str, Any] = json.loads(output.read_text())
        return outcome

    return [sys.executable, __file__, "--generate", str(spec)], collect_python


async def _start_py_spy(
    args: argparse.Namespace, pid: int, work: Path
) -> asyncio.subprocess.Process | None:
    """With --py-spy: sample monitoring (every thread, idle samples left out) for the
    measured window, as collapsed stacks (one line per stack, `;`-joined frames and a
    count) in work/py-spy.txt, for `bench/py_spy_split.py` or any flamegraph tool."""
    if not args.py_spy:
        return None
    output = work / "py-spy.txt"
    log(f"py-spy: {output}")
    return await asyncio.create_subprocess_exec(
        "uvx",
        f"py-spy@{PY_SPY_VERSION}",
        "record",
        "--pid",
        str(pid),
        "--duration",
        str(int(args.seconds)),
        "--rate",
        "200",
        "--format",
        "raw",
        "--output",
        str(output),
        "--nonblocking",
    )


# -- where the live process's CPU goes, by thread ---------------------------------------------

ThreadTimes = dict[int, tuple[float, float, int, int]]  # tid: user s, system s, switches


def thread_times(pid: int) -> ThreadTimes:
    """Per thread of `pid` (Linux `/proc`): user and system CPU seconds, voluntary and
    involuntary context switches. A thread that rarely sleeps voluntarily never waits
    for work: it is saturated, whatever share of a core the machine gives it."""
    ticks = os.sysconf("SC_CLK_TCK")
    found: ThreadTimes = {}
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            stat = Path(f"/proc/{pid}/task/{tid}/stat").read_text()
            status = Path(f"/proc/{pid}/task/{tid}/status").read_text()
        except FileNotFoundError:  # the thread ended meanwhile
            continue
        fields = stat[stat.rindex(")") + 2 :].split()
        switches = {
            key: int(value)
            for key, _, value in (line.partition(":\t") for line in status.splitlines())
            if key in ("voluntary_ctxt_switches", "nonvoluntary_ctxt_switches")
        }
        found[int(tid)] = (
            int(fields[11]) / ticks,
            int(fields[12]) / ticks,
            switches["voluntary_ctxt_switches"],
            switches["nonvoluntary_ctxt_switches"],
        )
    return found


def thread_split(pid: int, before: ThreadTimes, after: ThreadTimes) -> dict[str, Any]:
    """The measured window's CPU and switches: the event loop's thread (the main one)
    and the other threads together, and the sockets the process has open at the end."""

    def delta(tids: list[int]) -> dict[str, float]:
        sums = [0.0, 0.0, 0.0, 0.0]
        for tid in tids:
            start = before.get(tid, (0.0, 0.0, 0, 0))
            for i in range(4):
                sums[i] += after[tid][i] - start[i]
        return {
            "user_seconds": round(sums[0], 2),
            "system_seconds": round(sums[1], 2),
            "voluntary_switches": int(sums[2]),
            "involuntary_switches": int(sums[3]),
        }

    sockets = 0
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        with contextlib.suppress(FileNotFoundError):  # closed meanwhile
            sockets += os.readlink(fd).startswith("socket:")
    return {
        "event_loop_thread": delta([pid]),
        "other_threads": delta([tid for tid in after if tid != pid]),
        "sockets_open_at_end": sockets,
    }


def machine() -> dict[str, Any]:
    import importlib.metadata as md
    import platform as host

    return {
        "cores": os.cpu_count(),
        "cpu": cpu_model(),
        "python": host.python_version(),
        "kafka": kafka_version(),
        "load_average_at_start": [round(x, 2) for x in os.getloadavg()],
        "packages": {
            name: md.version(name)
            for name in (
                "fastapi",
                "uvicorn",
                "uvloop",
                "httptools",
                "httpx",
                "pydantic",
                "sqlalchemy",
                "aiosqlite",
            )
        },
    }


@dataclass
class Driven:
    """One server under the generator's load: its samples, and its CPU in the window."""

    outcome: dict[str, Any]
    cpu_seconds: float
    wall_seconds: float
    load_before: tuple[float, float, float]
    threads: dict[str, Any]
    generator_cpu: float


async def _drive(
    args: argparse.Namespace,
    work: Path,
    base_url: str,
    pid: int,
    token: str,
    sessions: list[str],
    on_measuring: Callable[[], Awaitable[asyncio.subprocess.Process | None]] | None = None,
) -> Driven:
    """Run the load generator against the server `pid` at `base_url` and measure the
    server from the end of the warm-up until the generator exits. `on_measuring` runs
    as the measured window starts (profilers) and may hand back a process to wait for."""
    command, collect = _generator(args, work, base_url, token, sessions)
    children_cpu = _children_cpu()
    generator = await asyncio.create_subprocess_exec(*command)
    await asyncio.sleep(args.warmup + 0.5)
    cpu_before, load_before = running_cpu_seconds(pid), os.getloadavg()
    threads_before = thread_times(pid)
    started = time.perf_counter()
    waited = await on_measuring() if on_measuring else None
    code = await asyncio.wait_for(generator.wait(), args.seconds + args.warmup + 120)
    cpu_used = running_cpu_seconds(pid) - cpu_before
    threads = thread_split(pid, threads_before, thread_times(pid))
    wall = time.perf_counter() - started
    generator_cpu = _children_cpu() - children_cpu
    if waited is not None:
        await waited.wait()
    if code != 0:
        raise RuntimeError(f"the load generator failed ({code})")
    return Driven(collect(), cpu_used, wall, load_before, threads, generator_cpu)


async def _answers(api: httpx.AsyncClient, session_id: str) -> dict[str, Any]:
    """Monitoring's answers (through `api`) to a new reading and a read of `session_id`,
    for the floor to give back (bench/http_floor.py's `floor_app`)."""
    posted = await post_reading(api, session_id, 0)
    read = await api.get(f"/sessions/{session_id}")
    if posted.status_code != 201 or read.status_code != 200:
        raise RuntimeError(f"answers for the floor: {posted.text} / {read.text}")
    return {"post_vitals": posted.json(), "get_session": read.json()}


def _write_json(path: Path, document: dict[str, Any]) -> None:
    path.write_text(json.dumps(document))


async def _floor(
    args: argparse.Namespace, work: Path, token: str, sessions: list[str], answers: Path
) -> Driven:
    """bench/http_floor.py as its own process, driven as monitoring is."""
    port = free_port()
    floor = await asyncio.create_subprocess_exec(
        sys.executable,
        str(Path(__file__).with_name("http_floor.py")),
        "--port",
        str(port),
        "--answers",
        str(answers),
    )
    base_url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        async with httpx.AsyncClient(base_url=base_url, timeout=5) as probe:
            while True:  # poll until it answers
                with contextlib.suppress(httpx.TransportError):
                    if (await probe.get("/healthz")).status_code == 200:
                        break
                if floor.returncode is not None or time.monotonic() > deadline:
                    raise RuntimeError("the floor server did not start")
                await asyncio.sleep(0.1)
        log(f"floor {base_url} up; load: {args.rate} req/s")
        return await _drive(args, work / "floor", base_url, floor.pid, token, sessions)
    finally:
        floor.terminate()
        await asyncio.wait_for(floor.wait(), 30)


def _cpu(driven: Driven, requests: int, answered: int) -> dict[str, Any]:
    return {
        "seconds": round(driven.cpu_seconds, 2),
        "cores_used": round(driven.cpu_seconds / driven.wall_seconds, 3),
        "ms_per_request": round(driven.cpu_seconds * 1000 / max(1, requests), 2),
        "ms_per_answered_request": round(driven.cpu_seconds * 1000 / max(1, answered), 2),
        "by_thread": driven.threads,
    }


def _against_floor(server: dict[str, Any], floor: dict[str, Any]) -> dict[str, Any]:
    """Monitoring's figures over the floor's, from the same run: what the platform
    costs above the framework. The floor's own CPU a request moved by 25 % within half
    an hour in round 25 (a process at a sixth of a core), so read the ratio with it."""

    def ratio(a: float | None, b: float | None) -> float | None:
        return round(a / b, 2) if a is not None and b else None

    out: dict[str, Any] = {
        "cpu_ms_per_answered_request": ratio(
            server["cpu"]["ms_per_answered_request"], floor["cpu"]["ms_per_answered_request"]
        )
    }
    for kind in ("post_vitals", "get_session", "all"):
        mine = server["endpoints"][kind]["latency_ms_from_due"]
        base = floor["endpoints"][kind]["latency_ms_from_due"]
        out[kind] = {p: ratio(mine.get(p), base.get(p)) for p in ("p50", "p99")}
    return out


async def run(args: argparse.Namespace) -> dict[str, Any]:
    info = machine()
    ensure_jars()
    work = Path(tempfile.mkdtemp(prefix="kap-bench-http-"))
    profile_path = work / "monitoring.prof"
    floor: Driven | None = None
    with LocalKafka(partitions=3) as kafka:
        log(f"kafka {kafka.bootstrap} up")
        platform = Platform(
            bootstrap=kafka.bootstrap,
            work_dir=work,
            jwt_secret=SECRET,
            extra_env={"LOG_LEVEL": "WARNING", "KAFKA_TOPIC_PARTITIONS": "3"},
        )
        service = platform["monitoring"]
        if args.profile:
            start_profiled(service, profile_path)
            service.wait_ready(120)
        else:
            platform.start(["monitoring"], timeout=120)
        try:
            token = mint_token(SECRET, sub="rn-bench", role="nurse", sites=[SITE])
            # One session more than the load's for the floor's answers: a reading posted
            # now to a session of the load would make all its later (older) readings
            # late, and a late reading replays the session's stored ones.
            opened = await open_sessions(kafka.bootstrap, service.url, token, args.sessions + 1)
            sessions, answered_by = opened[: args.sessions], opened[-1]
            log(f"{len(opened)} sessions open, dosed")
            if not args.no_floor:
                answers = work / "answers.json"
                async with httpx.AsyncClient(
                    base_url=service.url, headers={"Authorization": f"Bearer {token}"}, timeout=30
                ) as api:
                    _write_json(answers, await _answers(api, answered_by))
                floor = await _floor(args, work, token, sessions, answers)
            log(f"monitoring {service.url}; load: {args.rate} req/s")
            assert service.proc is not None
            pid = service.proc.pid

            async def start_profilers() -> asyncio.subprocess.Process | None:
                spy = await _start_py_spy(args, pid, work)
                if args.profile:
                    os.kill(pid, signal.SIGUSR1)  # PROFILED_MAIN starts its profile
                return spy

            driven = await _drive(
                args, work / "monitoring", service.url, pid, token, sessions, start_profilers
            )
        finally:
            platform.stop()
    summary = summarize(driven.outcome["samples"], args.seconds)
    p99 = summary["all"]["latency_ms_from_due"].get("p99", float("inf"))
    requests = summary["all"]["requests"]
    answered = requests - summary["all"]["unanswered_or_not_sent"]
    cpu = _cpu(driven, requests, answered)
    result: dict[str, Any] = {
        "benchmark": "http_load",
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {
            **info,
            "load_average_before_load": [round(x, 2) for x in driven.load_before],
            "load_average_at_end": [round(x, 2) for x in os.getloadavg()],
        },
        "parameters": {
            "rate_per_second": args.rate,
            "seconds": args.seconds,
            "warmup_seconds": args.warmup,
            "sessions": args.sessions,
            "mix": "1:1 POST /sessions/{id}/vitals : GET /sessions/{id}",
            "database": "sqlite",
            "server": "monitoring as an OS process (uvicorn, one worker)",
            "generator": GENERATORS[args.generator],
            "profiled": args.profile,
        },
        "generator_max_lag_ms": driven.outcome["generator_max_lag_ms"],
        "generator_cpu": {
            "seconds": round(driven.generator_cpu, 2),
            "cores_used": round(driven.generator_cpu / (args.seconds + args.warmup), 3),
        },
        "monitoring_cpu": cpu,
        "endpoints": summary,
        "targets": {
            "p99_ms": GOAL_P99_MS,
            "met": bool(p99 <= GOAL_P99_MS and summary["all"]["errors"] == 0),
        },
    }
    if floor is not None:
        floor_summary = summarize(floor.outcome["samples"], args.seconds)
        floor_requests = floor_summary["all"]["requests"]
        floor_answered = floor_requests - floor_summary["all"]["unanswered_or_not_sent"]
        result["floor"] = {
            "server": "bench/http_floor.py: FastAPI alone on the services' uvicorn settings, "
            "the same requests, monitoring's answers through the same models; run first, "
            "in the same run, with the same generator",
            "load_average_before_load": [round(x, 2) for x in floor.load_before],
            "generator_max_lag_ms": floor.outcome["generator_max_lag_ms"],
            "cpu": _cpu(floor, floor_requests, floor_answered),
            "endpoints": floor_summary,
        }
        result["against_floor"] = _against_floor(
            {"cpu": cpu, "endpoints": summary}, result["floor"]
        )
    if args.profile and profile_path.exists():
        out = io.StringIO()
        stats = pstats.Stats(str(profile_path), stream=out)
        # Python calls the whole process made in the measured window (and its shutdown):
        # unlike its CPU time, hardly moved by the machine's load; compare at one rate.
        result["function_calls_profiled"] = {
            "total": stats.total_calls,  # type: ignore[attr-defined]
            "per_request": round(
                stats.total_calls / max(1, summary["all"]["requests"])  # type: ignore[attr-defined]
            ),
        }
        stats.sort_stats("cumulative").print_stats(40)
        result["profile_top_cumulative"] = [
            line.rstrip() for line in out.getvalue().splitlines() if line.strip()
        ][-42:]
        out = io.StringIO()
        pstats.Stats(str(profile_path), stream=out).sort_stats("tottime").print_stats(30)
        result["profile_top_tottime"] = [
            line.rstrip() for line in out.getvalue().splitlines() if line.strip()
        ][-32:]
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=float, default=200.0, help="requests/s (both endpoints)")
    parser.add_argument("--seconds", type=float, default=60.0, help="measured duration")
    parser.add_argument("--warmup", type=float, default=5.0)
    parser.add_argument("--sessions", type=int, default=50)
    parser.add_argument("--profile", action="store_true", help="monitoring under cProfile")
    parser.add_argument(
        "--no-floor",
        action="store_true",
        help="skip the baseline (bench/http_floor.py under the same load, run first)",
    )
    parser.add_argument(
        "--py-spy",
        action="store_true",
        help="sample the live monitoring process with py-spy (via uvx) while measured",
    )
    parser.add_argument(
        "--generator",
        choices=tuple(GENERATORS),
        default="vegeta" if find_vegeta() else "python",
        help="the load generator (default: vegeta when installed)",
    )
    parser.add_argument("--output", type=Path, default=RESULTS)
    parser.add_argument("--no-write", action="store_true", help="print only")
    parser.add_argument("--variant", help="record under variants.<name> of the output file")
    parser.add_argument(
        "--per-request",
        type=int,
        metavar="N",
        help="instead of the load: N requests of each kind one at a time, in-process, "
        "and the CPU each costs (recorded under per_request)",
    )
    parser.add_argument(
        "--gap",
        type=float,
        default=0.0,
        help="with --per-request: seconds idle between requests (a clinic's rate)",
    )
    parser.add_argument(
        "--only",
        action="append",
        choices=PER_REQUEST_KINDS,
        help="with --per-request: time this kind only (repeatable; default both)",
    )
    parser.add_argument("--generate", help=argparse.SUPPRESS)  # the load generator process
    args = parser.parse_args(argv)
    if args.generate:
        return generator_main(args.generate)
    if args.per_request:
        return record_per_request(args)
    result = asyncio.run(run(args))
    print(json.dumps({k: v for k, v in result.items() if not k.startswith("profile")}, indent=2))
    for key in ("profile_top_tottime", "profile_top_cumulative"):
        if key in result:
            print("\n".join(result[key]))
    if args.no_write:
        return 0
    args.output.parent.mkdir(parents=True, exist_ok=True)
    document = json.loads(args.output.read_text()) if args.output.exists() else {}
    if args.variant:
        document.setdefault("variants", {})[args.variant] = result
    else:
        result["variants"] = document.get("variants", {})
        if "per_request" in document:  # kept: recorded by --per-request runs
            result["per_request"] = document["per_request"]
        document = result
    args.output.write_text(json.dumps(document, indent=2) + "\n")
    log(f"written {args.output}")
    return 0


def record_per_request(args: argparse.Namespace) -> int:
    profile_dir = Path(tempfile.mkdtemp(prefix="kap-bench-http-prof-")) if args.profile else None
    load_before = [round(x, 2) for x in os.getloadavg()]
    kinds = tuple(args.only) if args.only else PER_REQUEST_KINDS
    cost = asyncio.run(per_request_cost(args.per_request, profile_dir, args.gap, kinds))
    cost["date"] = datetime.now(UTC).isoformat(timespec="seconds")
    cost["load_average"] = {"before": load_before, "after": [round(x, 2) for x in os.getloadavg()]}
    print(json.dumps(cost, indent=2))
    if profile_dir:
        for kind in kinds:
            print(f"== {kind}: main thread, by own time")
            pstats.Stats(str(profile_dir / f"{kind}.prof")).sort_stats("tottime").print_stats(25)
    if not args.no_write and args.output.exists():
        document = json.loads(args.output.read_text())
        document.setdefault("per_request", {})[args.variant or "current"] = cost
        args.output.write_text(json.dumps(document, indent=2) + "\n")
        log(f"written per_request.{args.variant or 'current'} to {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
