"""GET /sites/{site_id}/sessions: a site's sessions in a time range, for the care-team
console's treatment floor (viewer roles of the site only)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any
from urllib.parse import quote

from kap_shared.testing import token

World = Any  # conftest.World

NURSE = token("rn-dee", "nurse", ["site-a"])
OTHER_SITE = token("rx-bo", "prescriber", ["site-b"])


def test_lists_the_sites_sessions_of_the_day_in_time_order(world: World) -> None:
    world.ready()
    late = world.book("preparation", world.at(0, "15:00"))
    early = world.book("preparation", world.at(0, "09:00"), room_id="room-a2")
    next_day = world.book("preparation", world.at(1, "09:00"))
    for response in (late, early, next_day):
        assert response.status_code == 201, response.text
    start = world.at(0, "00:00")

    response = world.client.get(
        f"/sites/site-a/sessions?from={quote(start.isoformat())}", headers=NURSE
    )

    assert response.status_code == 200, response.text
    assert [s["session_id"] for s in response.json()] == [
        early.json()["session_id"],
        late.json()["session_id"],
    ]
    two_days = (start + timedelta(days=2)).isoformat()
    response = world.client.get(
        f"/sites/site-a/sessions?from={quote(start.isoformat())}&to={quote(two_days)}",
        headers=NURSE,
    )
    assert len(response.json()) == 3


def test_another_site_is_403_and_a_naive_time_is_422(world: World) -> None:
    world.ready()
    start = world.at(0, "00:00")
    response = world.client.get(
        f"/sites/site-a/sessions?from={quote(start.isoformat())}", headers=OTHER_SITE
    )
    assert response.status_code == 403
    naive = world.client.get("/sites/site-a/sessions?from=2026-12-01T00:00:00", headers=NURSE)
    assert naive.status_code == 422
    assert "from" in naive.text
