"""What every benchmark script shares: the machine it ran on, a process's CPU time,
and the first dose of a session once monitoring has the check-in.

The scripts run as `uv run python bench/<name>.py`, so this module is importable
beside them."""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from pathlib import Path

import httpx

_TICKS = os.sysconf("SC_CLK_TCK")
IM_KETAMINE = {"route": "im", "agent": "ketamine", "dose_mg": 35}


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
