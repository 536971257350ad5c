"""Stand-in for intake, scheduling, monitoring and notifications in the console floor
benchmark: a site with N live chairs, answered from memory (run as its own process:
`python bench/console_stub.py --port P --chairs 50`). It isolates the console's own
cost (fan-out calls, card building, rendering) from the services' databases.
Monitoring's routes are under `/monitoring` (its `MONITORING_URL` is `<stub>/monitoring`):
scheduling and monitoring both answer `GET /sites/{id}/sessions`, each its own view.
`POST /_bump/{session_id}` sets the next heart rate the session's window reports."""

from __future__ import annotations

import argparse
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

import uvicorn
from fastapi import FastAPI, Query

SITE = "site-bench"


def build(chairs: int) -> FastAPI:
    app = FastAPI()
    now = datetime.now(UTC)
    start = now.replace(hour=0, minute=0, second=0, microsecond=0) + timedelta(hours=8)
    heart_rate = dict.fromkeys((f"s{n:03d}" for n in range(chairs)), 72)

    def booking(n: int) -> dict[str, Any]:
        return {
            "session_id": f"s{n:03d}",
            "plan_id": f"plan{n}",
            "patient_id": f"p{n:03d}",
            "site_id": SITE,
            "phase": "dosing",
            "sequence": 1,
            "label": "Dosing session 1 of 6",
            "starts_at": (start + timedelta(minutes=5 * n)).isoformat(),
            "ends_at": (start + timedelta(minutes=5 * n + 180)).isoformat(),
            "room_id": f"chair-{n:02d}",
            "therapist_id": "th-bench",
            "prescriber_id": "rx-bench",
            "status": "checked_in",
            "booked_by": "co-bench",
            "checked_in_at": now.isoformat(),
            "completed_at": None,
            "cancelled_at": None,
            "cancel_reason": None,
            "discharge_cleared_at": None,
        }

    @app.get("/sites/{site_id}/sessions")
    async def sessions(site_id: str) -> list[dict[str, Any]]:
        return [booking(n) for n in range(chairs)]

    @app.get("/sessions/{session_id}")
    async def booked(session_id: str) -> dict[str, Any]:
        return booking(int(session_id[1:]))

    @app.get("/monitoring/sites/{site_id}/sessions")
    async def windows(site_id: str) -> list[dict[str, Any]]:
        return [window(f"s{n:03d}") for n in range(chairs)]

    @app.get("/monitoring/sessions/{session_id}")
    async def session(session_id: str) -> dict[str, Any]:
        return window(session_id)

    def window(session_id: str) -> dict[str, Any]:
        n = int(session_id[1:])
        first = now - timedelta(minutes=20 + n % 40)
        at = datetime.now(UTC).isoformat()
        return {
            **booking(n),
            "status": "checked_in",
            "first_dose_at": first.isoformat(),
            "dosing_end_at": (first + timedelta(minutes=1)).isoformat(),
            "bp_check_done": n % 2 == 0,
            "doses": [{"dose_id": f"d{n}"}],
            "latest": {
                "bp_systolic": {"value": 128, "recorded_at": at},
                "bp_diastolic": {"value": 82, "recorded_at": at},
                "heart_rate": {"value": heart_rate[session_id], "recorded_at": at},
                "spo2": {"value": 97, "recorded_at": at},
            },
            "open_alerts": [],
            "discharge": {
                "allowed": False,
                "blockers": [
                    {
                        "rule_id": "KET-DIS-6",
                        "message": "observed 20 of at least 60 minutes after the end of dosing",
                        "discharge_allowed_at": (first + timedelta(minutes=61)).isoformat(),
                        "cleared_by": "time",
                    }
                ],
            },
        }

    @app.get("/alerts")
    async def alerts() -> list[dict[str, Any]]:
        return []

    @app.get("/patients/display-names")
    async def display_names(ids: Annotated[list[str], Query()]) -> dict[str, Any]:
        return {
            "patients": [
                {"patient_id": i, "site_id": SITE, "display_name": f"Chair {i.upper()[:1]}."}
                for i in ids
            ],
            "not_found": [],
        }

    @app.get("/patients/{patient_id}")
    async def patient(patient_id: str) -> dict[str, Any]:
        return {"given_name": "Chair", "family_name": patient_id.upper(), "screenings": []}

    @app.post("/_bump/{session_id}")
    async def bump(session_id: str, value: int) -> dict[str, int]:
        heart_rate[session_id] = value
        return {"heart_rate": value}

    return app


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--chairs", type=int, default=50)
    args = parser.parse_args()
    uvicorn.run(build(args.chairs), host="127.0.0.1", port=args.port, log_level="warning")


if __name__ == "__main__":
    main()
