"""Bad input: 422 naming the field, unknown path ids 404, and either way nothing
stored and nothing published (row counts of every table, outbox included)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import pytest

from kap_shared.testing import token

World = Any  # conftest.World
Counts = Callable[[], dict[str, int]]

COORDINATOR = token("co-amy", "coordinator", ["site-a"])
NURSE = token("rn-dee", "nurse", ["site-a"])
PRESCRIBER = token("rx-ada", "prescriber", ["site-a"])
ADMIN = token("adm-1", "admin", ["*"])


def fields_of(response: Any) -> list[str]:
    assert response.status_code == 422, response.text
    error = response.json()["error"]
    assert error["code"] == "validation_error"
    return [d["field"] for d in error["details"]]


def assert_names(response: Any, field: str) -> None:
    fields = fields_of(response)
    assert any(f == field or f.startswith(field + ".") for f in fields), fields
    assert field in response.json()["error"]["message"]


Refused = Callable[[str, Any, dict[str, str], str], None]


@pytest.fixture
def refused(world: World, counts: Counts) -> Refused:
    """POSTing `body` to `path` with `headers` is a 422 naming `field`, and no table
    (the outbox included) changes."""

    def post(path: str, body: Any, headers: dict[str, str], field: str) -> None:
        before = counts()
        assert_names(world.client.post(path, json=body, headers=headers), field)
        assert counts() == before

    return post


# -- POST /sessions ----------------------------------------------------------------------------


def _booking_cases(world: World) -> list[tuple[str, dict[str, Any], str]]:
    start = world.at(0, "09:00", week=1)
    good = world.body("dosing", start)
    naive = start.replace(tzinfo=None).isoformat()
    cases: list[tuple[str, dict[str, Any], str]] = [
        (f"missing {name}", {k: v for k, v in good.items() if k != name}, name)
        for name in ("patient_id", "phase", "starts_at", "ends_at", "room_id", "therapist_id")
    ]
    cases += [
        ("unknown phase", {**good, "phase": "infusion"}, "phase"),
        ("phase not a string", {**good, "phase": 2}, "phase"),
        ("starts_at not a time", {**good, "starts_at": "tomorrow"}, "starts_at"),
        ("starts_at without offset", {**good, "starts_at": naive}, "starts_at"),
        (
            "ends before it starts",
            {**good, "ends_at": (start - timedelta(hours=1)).isoformat()},
            "ends_at",
        ),
        ("ends when it starts", {**good, "ends_at": start.isoformat()}, "ends_at"),
        (
            "starts in the past",
            {
                **good,
                "starts_at": (world.clock() - timedelta(minutes=1)).isoformat(),
                "ends_at": (world.clock() + timedelta(hours=3)).isoformat(),
            },
            "starts_at",
        ),
        (
            "longer than 12 h",
            {**good, "ends_at": (start + timedelta(hours=12, minutes=1)).isoformat()},
            "ends_at",
        ),
        ("unexpected field", {**good, "dose_mg": 56}, "dose_mg"),
        ("bad id", {**good, "therapist_id": "th ben!"}, "therapist_id"),
        ("unknown patient", {**good, "patient_id": "pt-nobody"}, "patient_id"),
        ("unknown room", {**good, "room_id": "room-z9"}, "room_id"),
        ("unknown therapist", {**good, "therapist_id": "th-zed"}, "therapist_id"),
        ("therapist who is a prescriber", {**good, "therapist_id": "rx-ada"}, "therapist_id"),
        ("unknown prescriber", {**good, "prescriber_id": "rx-zed"}, "prescriber_id"),
        ("prescriber who is a nurse", {**good, "prescriber_id": "rn-dee"}, "prescriber_id"),
        ("empty prescriber", {**good, "prescriber_id": ""}, "prescriber_id"),
    ]
    return cases


BOOKING_CASE_IDS = [
    "missing patient_id",
    "missing phase",
    "missing starts_at",
    "missing ends_at",
    "missing room_id",
    "missing therapist_id",
    "unknown phase",
    "phase not a string",
    "starts_at not a time",
    "starts_at without offset",
    "ends before it starts",
    "ends when it starts",
    "starts in the past",
    "longer than 12 h",
    "unexpected field",
    "bad id",
    "unknown patient",
    "unknown room",
    "unknown therapist",
    "therapist who is a prescriber",
    "unknown prescriber",
    "prescriber who is a nurse",
    "empty prescriber",
]


@pytest.mark.parametrize("case", BOOKING_CASE_IDS)
def test_book_session_422_names_the_field_and_changes_nothing(
    world: World, refused: Refused, case: str
) -> None:
    world.prepared()
    cases = {name: (body, field) for name, body, field in _booking_cases(world)}
    body, field = cases[case]
    refused("/sessions", body, COORDINATOR, field)


def test_every_booking_case_is_listed(world: World) -> None:
    assert [name for name, _, _ in _booking_cases(world)] == BOOKING_CASE_IDS


@pytest.mark.parametrize("body", [None, [], "x"], ids=["no body", "a list", "a string"])
def test_book_session_422_for_a_body_that_is_not_an_object(
    world: World, counts: Counts, body: Any
) -> None:
    before = counts()
    response = world.client.post("/sessions", json=body, headers=COORDINATOR)
    assert response.status_code == 422
    assert counts() == before


def test_book_session_422_names_the_unknown_patient_in_words(world: World) -> None:
    response = world.book("preparation", world.at(0), patient_id="pt-nobody")
    assert response.json()["error"]["details"] == [
        {"field": "patient_id", "message": "unknown patient pt-nobody (not screened at intake yet)"}
    ]


# -- lifecycle bodies --------------------------------------------------------------------------


@pytest.fixture
def session_id(world: World) -> str:
    world.prepared()
    booked: dict[str, Any] = world.booked("dosing", world.at(0, "09:00", week=1))
    world.clock.set(world.at(0, "08:50", week=1))
    return str(booked["session_id"])


def _at(world: World, minutes_ago: float) -> str:
    moment: datetime = world.clock() - timedelta(minutes=minutes_ago)
    return moment.isoformat()


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"starts_at": None}, "starts_at"),
        ({"ends_at": None}, "ends_at"),
        ({"ends_at": "before"}, "ends_at"),
        ({"room_id": "room-a2"}, "room_id"),
        ({"starts_at": "past"}, "starts_at"),
    ],
    ids=[
        "missing starts_at",
        "missing ends_at",
        "ends before it starts",
        "room cannot change",
        "in the past",
    ],
)
def test_reschedule_422(
    world: World, refused: Refused, session_id: str, change: dict[str, Any], field: str
) -> None:
    start = world.at(1, "09:00", week=1)
    body: dict[str, Any] = {
        "starts_at": start.isoformat(),
        "ends_at": (start + timedelta(hours=3)).isoformat(),
    }
    for key, value in change.items():
        if value == "before":
            body[key] = (start - timedelta(hours=1)).isoformat()
        elif value == "past":
            body[key] = _at(world, 5)
        elif value is None:
            body.pop(key)
        else:
            body[key] = value
    refused(f"/sessions/{session_id}/reschedule", body, COORDINATOR, field)


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "reason"),
        ({"reason": "bored"}, "reason"),
        ({"reason": "plan_suspended"}, "reason"),
        ({"reason": "other", "note": "x" * 2001}, "note"),
        ({"reason": "other", "by": "me"}, "by"),
    ],
    ids=[
        "missing reason",
        "uncoded reason",
        "scheduling's own reason",
        "note too long",
        "unexpected field",
    ],
)
def test_cancel_422(refused: Refused, session_id: str, body: dict[str, Any], field: str) -> None:
    refused(f"/sessions/{session_id}/cancel", body, COORDINATOR, field)


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"last_food_at": None}, "last_food_at"),
        ({"last_liquid_at": None}, "last_liquid_at"),
        ({"transport_arranged": None}, "transport_arranged"),
        ({"transport_arranged": "yes"}, "transport_arranged"),
        ({"last_food_at": "future"}, "last_food_at"),
        ({"last_liquid_at": "future"}, "last_liquid_at"),
        ({"last_food_at": "2027-01-04T07:00:00"}, "last_food_at"),
        ({"last_food_at": "breakfast"}, "last_food_at"),
        ({"pulse": 80}, "pulse"),
    ],
    ids=[
        "missing last_food_at",
        "missing last_liquid_at",
        "missing transport_arranged",
        "transport not a boolean",
        "food in the future",
        "liquid in the future",
        "food without offset",
        "food not a time",
        "unexpected field",
    ],
)
def test_dosing_check_in_422(
    world: World, counts: Counts, session_id: str, change: dict[str, Any], field: str
) -> None:
    body = world.attest()
    for key, value in change.items():
        if value == "future":
            body[key] = (world.clock() + timedelta(minutes=5)).isoformat()
        elif value is None:
            body.pop(key)
        else:
            body[key] = value
    before = counts()
    response = world.check_in(session_id, body)
    assert_names(response, field)
    assert counts() == before


def test_dosing_check_in_without_a_body_names_the_first_missing_field(
    world: World, counts: Counts, session_id: str
) -> None:
    before = counts()
    response = world.client.post(f"/sessions/{session_id}/check-in", headers=NURSE)
    assert fields_of(response) == ["last_food_at"]
    assert counts() == before


# -- unknown path ids --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path", "body", "headers"),
    [
        ("GET", "/sessions/s-nope", None, NURSE),
        ("POST", "/sessions/s-nope/reschedule", "times", COORDINATOR),
        ("POST", "/sessions/s-nope/cancel", {"reason": "other"}, COORDINATOR),
        ("POST", "/sessions/s-nope/check-in", {}, NURSE),
        ("POST", "/sessions/s-nope/complete", None, NURSE),
        ("GET", "/patients/pt-nobody/plan", None, COORDINATOR),
        ("POST", "/patients/pt-nobody/holds/h-1/clear", {"reason": "ok"}, PRESCRIBER),
        ("POST", "/patients/pt-1/holds/h-nope/clear", {"reason": "ok"}, PRESCRIBER),
        ("PATCH", "/sites/site-nowhere", {"name": "X"}, ADMIN),
    ],
    ids=[
        "session",
        "reschedule",
        "cancel",
        "check-in",
        "complete",
        "plan",
        "hold's patient",
        "hold",
        "site",
    ],
)
def test_unknown_path_ids_are_404(
    world: World, counts: Counts, method: str, path: str, body: Any, headers: dict[str, str]
) -> None:
    world.ready()
    if body == "times":
        start = world.at(1)
        body = {"starts_at": start.isoformat(), "ends_at": (start + timedelta(hours=1)).isoformat()}
    before = counts()
    response = world.client.request(method, path, json=body, headers=headers)
    assert response.status_code == 404, response.text
    assert response.json()["error"]["code"] == "not_found"
    assert counts() == before


def test_a_hold_of_another_patient_is_404(world: World, counts: Counts) -> None:
    world.ready()
    world.ready("pt-2")
    world.concern("pt-2")
    hold_id = world.plan("pt-2")["holds"][0]["hold_id"]
    before = counts()
    response = world.client.post(
        f"/patients/pt-1/holds/{hold_id}/clear", json={"reason": "ok"}, headers=PRESCRIBER
    )
    assert response.status_code == 404
    assert counts() == before


# -- holds and sites ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "field"),
    [({}, "reason"), ({"reason": ""}, "reason"), ({"reason": "x" * 2001}, "reason")],
    ids=["missing", "empty", "too long"],
)
def test_clear_hold_422(world: World, refused: Refused, body: dict[str, Any], field: str) -> None:
    world.ready()
    world.concern()
    hold_id = world.plan()["holds"][0]["hold_id"]
    refused(f"/patients/pt-1/holds/{hold_id}/clear", body, PRESCRIBER, field)


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"timezone": "Mars/Olympus"}, "timezone"),
        ({"name": None}, "name"),
        ({"rems_certified_until": "soon"}, "rems_certified_until"),
        ({"beds": 3}, "beds"),
    ],
)
def test_update_site_422(world: World, body: dict[str, Any], field: str) -> None:
    response = world.client.patch("/sites/site-a", json=body, headers=ADMIN)
    assert_names(response, field)
    assert (
        world.client.patch("/sites/site-a", json={}, headers=ADMIN).json()["name"] == "North clinic"
    )


def test_create_site_422_for_an_unknown_time_zone(refused: Refused) -> None:
    body = {"site_id": "site-x", "name": "X", "timezone": "Europe/Atlantis"}
    refused("/sites", body, ADMIN, "timezone")
