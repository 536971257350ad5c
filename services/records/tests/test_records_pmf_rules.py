"""SPR-PMF-1's deadline and reminders are configuration (RULES_FILE, per site)."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from kap_shared.testing import token

Story = Any  # conftest.Story
Outbox = Callable[[], list[dict[str, Any]]]
COORDINATOR = token("co-amy", "coordinator", ["site-a"])
T0 = datetime.combine(date.today() + timedelta(days=30), time(14, 0), UTC)


@pytest.fixture
def rules_file(tmp_path: Path) -> Path:
    path = tmp_path / "rules.json"
    path.write_text(
        json.dumps({"sites": {"site-a": {"pmf_deadline_days": 2, "pmf_reminder_days": [1]}}})
    )
    return path


def test_SPR_PMF_1_deadline_and_reminders_are_configurable_per_site(
    client: TestClient, story: Story, outbox: Outbox, fire_timers: Callable[[datetime], int]
) -> None:
    story.intake_and_plan(T0)
    story.dosing_session("s-1", T0)
    [form] = client.get("/pmf", headers=COORDINATOR).json()["forms"]
    assert datetime.fromisoformat(form["due_by"]) == T0 + timedelta(days=2)
    assert fire_timers(T0 + timedelta(days=2)) == 2
    assert [
        e["event_type"] for e in [e for e in outbox() if e["event_type"].startswith("Pmf")]
    ] == [
        "PmfOpened",
        "PmfReminder",
        "PmfOverdue",
    ]
