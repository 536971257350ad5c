"""What scheduling and monitoring answer about one dosing session, as the console's
card tests need it: a booked session and its monitoring window, at NOW."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

NOW = datetime(2026, 12, 1, 15, 0, tzinfo=UTC)


def booking(status: str = "checked_in", **changes: Any) -> dict[str, Any]:
    """Scheduling's session: dosing, started an hour before NOW."""
    return {
        "session_id": "s1",
        "patient_id": "p1",
        "site_id": "site-north",
        "room_id": "north-room-1",
        "phase": "dosing",
        "label": "Dosing session 1 of 6",
        "starts_at": (NOW - timedelta(hours=1)).isoformat(),
        "status": status,
        "discharge_cleared_at": None,
        **changes,
    }


def window(minutes_since_dose: float | None = 30, **changes: Any) -> dict[str, Any]:
    """Monitoring's window: one dose `minutes_since_dose` before NOW (None: no dose yet)."""
    first = NOW - timedelta(minutes=minutes_since_dose) if minutes_since_dose else None
    return {
        "status": "checked_in",
        "doses": [{"dose_id": "d1"}] if first else [],
        "first_dose_at": first.isoformat() if first else None,
        "dosing_end_at": (first + timedelta(minutes=1)).isoformat() if first else None,
        "bp_check_done": False,
        "latest": {},
        "open_alerts": [],
        "open_safety_concerns": [],
        "discharge": {"allowed": False, "blockers": []},
        **changes,
    }
