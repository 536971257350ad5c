"""The projection replayed (what `kap-records rebuild` does with the topics' events,
here handed over in-process; tests/e2e/test_care_record.py runs the real command):
the same timeline and forms, nothing opened or published twice."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any

from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, text

from kap_records.adapters.tables import PROJECTION
from kap_records.entrypoints.stream import handlers
from kap_shared.events import decode
from kap_shared.messaging.consumer import EventConsumer
from kap_shared.testing import rows, token

Story = Any  # conftest.Story
COORDINATOR = token("co-amy", "coordinator", ["site-a"])
T0 = datetime.combine(date.today() + timedelta(days=30), time(14, 0), UTC)


def test_replay_in_another_order_gives_the_same_record(
    client: TestClient, story: Story, db: Path
) -> None:
    story.intake_and_plan(T0)
    story.dosing_session("s-1", T0, critical_alert=True)
    story.dosing_session("s-2", T0 + timedelta(days=3), sequence=2, with_40_min_bp=False)
    before = client.get("/patients/pt-1/timeline", headers=COORDINATOR).json()
    forms = client.get("/pmf", headers=COORDINATOR).json()
    outbox = rows(db, "SELECT COUNT(*) FROM outbox_messages")

    engine = create_engine(f"sqlite:///{db}")
    with engine.begin() as conn:
        for table in PROJECTION:
            conn.execute(text(f"DELETE FROM {table.__tablename__}"))  # noqa: S608 - fixed names
    engine.dispose()
    assert client.get("/patients/pt-1/timeline", headers=COORDINATOR).status_code == 404

    app = client.app
    assert isinstance(app, FastAPI)
    replay = EventConsumer(
        group_id="records-rebuild-test",
        sessions=app.state.runtime.sessions,
        handlers=handlers(app.state.rules, live=False),
    )
    # Topics are read in parallel: another order than the live one (here reversed).
    for event in reversed(story.delivered):
        assert client.portal is not None
        assert client.portal.call(replay.handle, decode(event.topic, event.to_json()))

    assert client.get("/patients/pt-1/timeline", headers=COORDINATOR).json() == before
    assert client.get("/pmf", headers=COORDINATOR).json() == forms
    assert rows(db, "SELECT COUNT(*) FROM outbox_messages") == outbox  # nothing published
    assert json.dumps(before).count("VitalsSummary") == 2
