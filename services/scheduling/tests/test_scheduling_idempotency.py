"""Idempotency-Key on scheduling's creating POSTs (CONTRACT 6.4): directory entries
and bookings are created once however often a client retries; the booking lock is
held until a keyed booking has committed, so same-slot bookings still exclude each
other."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi.testclient import TestClient

from .conftest import ADMIN, COORDINATOR

World = Any  # conftest.World
Outbox = Callable[[], list[dict[str, Any]]]
Counts = Callable[[], dict[str, int]]


def keyed(headers: dict[str, str], key: str) -> dict[str, str]:
    return {**headers, "Idempotency-Key": key}


def test_directory_posts_replay_the_first_response(client: TestClient, counts: Counts) -> None:
    site = {"site_id": "site-k", "name": "Keyed clinic"}
    first = client.post("/sites", json=site, headers=keyed(ADMIN, "site-1"))
    again = client.post("/sites", json=site, headers=keyed(ADMIN, "site-1"))
    # Without a key the same body is a conflict (it exists); with the key it is a replay.
    assert (first.status_code, again.status_code) == (201, 201)
    assert again.json() == first.json()
    assert again.headers["idempotent-replayed"] == "true"
    room = {"room_id": "room-k", "name": "Room K"}
    r1 = client.post("/sites/site-k/rooms", json=room, headers=keyed(ADMIN, "room-1"))
    r2 = client.post("/sites/site-k/rooms", json=room, headers=keyed(ADMIN, "room-1"))
    assert (r1.status_code, r2.json()) == (201, r1.json())
    assert counts()["sites"] == 1
    assert counts()["rooms"] == 1
    reused = client.post(
        "/sites/site-k/rooms", json={**room, "name": "B"}, headers=keyed(ADMIN, "room-1")
    )
    assert reused.status_code == 409
    assert reused.json()["error"]["code"] == "idempotency_key_reused"


def test_a_retried_booking_books_once_and_emits_one_session_scheduled(
    world: World, outbox: Outbox
) -> None:
    world.ready()
    before = len(outbox())
    start = world.at(0, "09:00")
    body = world.body("preparation", start)
    first = world.client.post("/sessions", json=body, headers=keyed(COORDINATOR, "book-1"))
    again = world.client.post("/sessions", json=body, headers=keyed(COORDINATOR, "book-1"))
    assert first.status_code == 201, first.text
    assert (again.status_code, again.json()) == (201, first.json())
    session_id = first.json()["session_id"]
    cancel = {"reason": "patient_request"}
    c1 = world.client.post(
        f"/sessions/{session_id}/cancel", json=cancel, headers=keyed(COORDINATOR, "cancel-1")
    )
    c2 = world.client.post(
        f"/sessions/{session_id}/cancel", json=cancel, headers=keyed(COORDINATOR, "cancel-1")
    )
    assert c1.status_code == 200, c1.text
    assert (c2.status_code, c2.json()) == (200, c1.json())
    assert [e["event_type"] for e in outbox()[before:]] == ["SessionScheduled", "SessionCancelled"]


def test_keyed_concurrent_bookings_of_the_same_slot_cannot_both_succeed(
    world: World, outbox: Outbox
) -> None:
    patients = world.ready_patients("pt-k")
    before = len(outbox())

    statuses = world.book_at_once(patients, world.at(0, "09:00"), key_prefix="k-")

    assert statuses == [201, 409, 409, 409]
    assert [e["event_type"] for e in outbox()[before:]] == ["SessionScheduled"]
