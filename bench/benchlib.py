"""What every benchmark script shares: the machine it ran on, a process's CPU time, a
results file that keeps every run, a dosing session announced as scheduling would, and
its first dose once monitoring has the check-in.

The scripts run as `uv run python bench/<name>.py`, so this module is importable
beside them."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import time
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError

from kap_shared.events import SessionCheckedIn, SessionScheduled, TreatmentPlanCreated
from kap_shared.events.enums import Phase, Route
from kap_shared.events.scheduling import (
    SessionCheckedInData,
    SessionScheduledData,
    TreatmentPlanCreatedData,
)

_TICKS = os.sysconf("SC_CLK_TCK")
IM_KETAMINE = {"route": "im", "agent": "ketamine", "dose_mg": 35}


def record_run(results: Path, benchmark: str, result: dict[str, Any]) -> None:
    """Append `result` to the results file's runs; variant "recorded" is also the one the
    README quotes. A file in an older shape (one result, no runs) becomes the first run."""
    document: dict[str, Any] = {}
    if results.exists():
        with contextlib.suppress(ValueError):
            document = json.loads(results.read_text())
    if "runs" not in document:
        earlier = {"variant": "recorded", **document} if document else None
        runs = [earlier] if earlier else []
        document = {"benchmark": benchmark, "recorded": earlier, "runs": runs}
    document["runs"].append(result)
    if result["variant"] == "recorded":
        document["recorded"] = result
    results.parent.mkdir(parents=True, exist_ok=True)
    results.write_text(json.dumps(document, indent=2) + "\n")


def services_producer(bootstrap: str) -> AIOKafkaProducer:
    """The producer settings of the services (kap_shared.messaging.broker.create_broker,
    faststream's defaults): idempotent, hence acks=all, no linger."""
    return AIOKafkaProducer(
        bootstrap_servers=bootstrap, enable_idempotence=True, acks="all", linger_ms=0
    )


async def create_topics(bootstrap: str, names: list[str], partitions: int) -> None:
    """The benchmark's own topics (one replica), left as they are if they exist."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        with contextlib.suppress(TopicAlreadyExistsError):
            await admin.create_topics([NewTopic(name, partitions, 1) for name in names])
    finally:
        await admin.close()


def cpu_model() -> str:
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.partition(":")[2].strip()
    return "unknown"


def cpu_seconds(pid: int) -> float | None:
    """user + system CPU of one process so far (None once it is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / _TICKS


def children(parent: int) -> list[int]:
    """The pids whose parent is `parent` (PostgreSQL's backends under its postmaster)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError, IndexError):
                if int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1]) == parent:
                    found.append(int(entry.name))
    return found


def postmaster_pid(data_dir: Path) -> int:
    """The running PostgreSQL server's postmaster, from its data directory."""
    return int((data_dir / "postmaster.pid").read_text().split()[0])


def announced_im_session(
    patient_id: str,
    session_id: str,
    *,
    site_id: str,
    prescriber_id: str,
    therapist_id: str,
    checked_in_at: datetime,
) -> list[tuple[bytes, bytes, str]]:
    """An IM ketamine plan, a dosing session of it and its check-in, as scheduling
    announces them on kap.scheduling.events.v1: (key, value, event type) each, the plan
    first (doses must follow its route, MON-DOSE-3)."""
    common = {
        "producer": "scheduling",
        "site_id": site_id,
        "patient_id": patient_id,
        "correlation_id": f"episode-{patient_id}",
    }
    team = {"prescriber_id": prescriber_id, "therapist_id": therapist_id}
    plan = TreatmentPlanCreated(
        **common,
        data=TreatmentPlanCreatedData(
            plan_id=f"plan-{patient_id}",
            route=Route.IM,
            protocol="im",
            planned_dosing_sessions=6,
            **team,
        ),
    )
    scheduled = SessionScheduled(
        **common,
        data=SessionScheduledData(
            session_id=session_id,
            plan_id=f"plan-{patient_id}",
            phase=Phase.DOSING,
            sequence=1,
            starts_at=checked_in_at - timedelta(minutes=5),
            ends_at=checked_in_at + timedelta(hours=3),
            room_id="room-bench",
            **team,
        ),
    )
    checked_in = SessionCheckedIn(
        **common,
        data=SessionCheckedInData(
            session_id=session_id, phase=Phase.DOSING, checked_in_at=checked_in_at
        ),
    )
    return [(e.key, e.to_json(), e.event_type) for e in (plan, scheduled, checked_in)]


async def first_dose(api: httpx.AsyncClient, session_id: str, *, within: float = 120) -> None:
    """POST the session's first dose, retrying until monitoring has consumed the
    check-in (the dose is refused until then)."""
    deadline = time.monotonic() + within
    while True:
        response = await api.post(f"/sessions/{session_id}/doses", json=IM_KETAMINE)
        if response.status_code == 201:
            return
        if time.monotonic() > deadline:
            raise RuntimeError(f"dose for {session_id}: {response.text}")
        await asyncio.sleep(0.2)  # poll: monitoring has not consumed the check-in yet


def running_cpu_seconds(pid: int) -> float:
    """cpu_seconds of a process that must still run (the service under load)."""
    seconds = cpu_seconds(pid)
    if seconds is None:
        raise RuntimeError(f"process {pid} is gone")
    return seconds
