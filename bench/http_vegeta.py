"""The HTTP benchmark's compiled load generator: vegeta (github.com/tsenart/vegeta).

A Python + httpx generator at 200 req/s takes a sizeable share of a 2-core machine's
CPU from the server it measures; vegeta (Go) sends the same open-loop load for a
fraction of it. Install it once with

    go install github.com/tsenart/vegeta/v12@v12.12.0     # into ~/go/bin

Open loop: vegeta's pacer makes request n due at start + n / rate; with all
`max_in_flight` workers busy a due request waits for one (it is not dropped), so the
latency from the due time counts the queueing. Targets are written up front, one per
request, alternating a new reading (POST, a fresh reading_id) and a session read (GET).
"""

from __future__ import annotations

import base64
import csv
import json
import os
import shutil
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

# kind, due, sent, done (seconds, one clock), HTTP status (-1: no answer)
Sample = tuple[str, float, float, float, int]
VERSION = "v12.12.0"


def find_vegeta() -> str | None:
    found = shutil.which("vegeta")
    default = Path.home() / "go" / "bin" / "vegeta"
    return found or (str(default) if default.exists() else None)


def reading_body(n: int, recorded_at: datetime) -> dict[str, Any]:
    """The n-th new reading (also what the Python generator posts)."""
    return {
        "reading_id": f"http-{os.urandom(12).hex()}",
        "recorded_at": recorded_at.isoformat(),
        "bp_systolic": 118 + n % 20,
        "bp_diastolic": 76 + n % 10,
        "heart_rate": 70 + n % 15,
        "spo2": 97.0,
        "respiratory_rate": 14,
    }


def write_targets(
    path: Path, base_url: str, token: str, sessions: list[str], rate: float, total: int
) -> None:
    """One target per request. A reading's recorded_at is in the past and rises with n
    (as a nurse's charting would), so every reading is in time order per session."""
    headers = {"Authorization": [f"Bearer {token}"], "Content-Type": ["application/json"]}
    first = datetime.now(UTC) - timedelta(seconds=total / rate + 5)
    with path.open("w") as out:
        for n in range(total):
            session_id = sessions[(n // 2) % len(sessions)]
            target: dict[str, Any] = {"url": f"{base_url}/sessions/{session_id}"}
            if n % 2 == 0:
                body = reading_body(n, first + timedelta(seconds=n / rate))
                target["url"] += "/vitals"
                target["method"] = "POST"
                target["body"] = base64.b64encode(json.dumps(body).encode()).decode()
            else:
                target["method"] = "GET"
            target["header"] = headers
            out.write(json.dumps(target) + "\n")


def attack_command(
    vegeta: str, targets: Path, results: Path, rate: float, total: int, max_in_flight: int
) -> list[str]:
    return [
        vegeta,
        "attack",
        "-format=json",
        f"-targets={targets}",
        f"-rate={rate:g}/1s",
        f"-duration={total / rate:.3f}s",
        f"-workers={max_in_flight}",
        f"-max-workers={max_in_flight}",
        "-timeout=5s",
        f"-output={results}",
    ]


def read_results(
    vegeta: str, results: Path, rate: float, total: int, not_sent: int
) -> tuple[list[Sample], float]:
    """The attack's samples (due time: vegeta's start + seq / rate) and the largest lag
    of a send behind its due time, ms. vegeta stops at the attack's duration, so with
    every worker busy the last requests are never sent: each is a sample with status
    `not_sent` (an error)."""
    encoded = subprocess.run(
        [vegeta, "encode", "-to=csv", str(results)], check=True, capture_output=True, text=True
    ).stdout
    # CSV columns: timestamp (unix ns), code, latency (ns), bytes out, bytes in, error,
    # body (base64), attack name, seq, method, url, headers
    rows = sorted(csv.reader(encoded.splitlines()), key=lambda row: int(row[8]))
    if not rows:
        return [], 0.0
    start = int(rows[0][0]) / 1e9
    samples: list[Sample] = []
    lag = 0.0
    for row in rows:
        sent, seq, code = int(row[0]) / 1e9, int(row[8]), int(row[1])
        due = start + seq / rate
        lag = max(lag, sent - due)
        kind = "post_vitals" if row[9] == "POST" else "get_session"
        samples.append((kind, due, sent, sent + int(row[2]) / 1e9, code or -1))
    for seq in range(len(rows), total):  # targets alternate POST, GET from seq 0
        due = start + seq / rate
        samples.append(("post_vitals" if seq % 2 == 0 else "get_session", due, due, due, not_sent))
    return samples, round(lag * 1000, 1)
