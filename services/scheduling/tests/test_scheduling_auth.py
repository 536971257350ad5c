"""Authorization (CONTRACT section 4) as a matrix: every endpoint x every role, at the
patient's own site and at another site. 401 without a valid token; 403 for a role
not allowed or a site not in the token, and then nothing stored or published."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pytest

from kap_shared.testing import BAD_CREDENTIALS, token
from kap_shared.testing_ops import assert_wildcard_sites_only_for_admin

World = Any  # conftest.World
Counts = Callable[[], dict[str, int]]

ROLES = ("prescriber", "therapist", "nurse", "coordinator", "admin", "device")
ALLOWED: dict[str, set[str]] = {
    "book": {"coordinator", "prescriber", "therapist"},
    "get_session": {"prescriber", "therapist", "nurse", "coordinator", "admin"},
    "reschedule": {"coordinator", "prescriber", "therapist"},
    "cancel": {"coordinator", "prescriber", "therapist", "nurse"},
    "check_in": {"nurse", "prescriber", "therapist"},
    "complete": {"nurse", "prescriber", "therapist"},
    "plan": {"prescriber", "therapist", "nurse", "coordinator", "admin"},
    "clear_hold": {"prescriber"},
    "update_site": {"admin", "coordinator"},
    "add_room": {"admin", "coordinator"},
    "add_clinician": {"admin", "coordinator"},
}
ENDPOINTS = sorted(ALLOWED)


@dataclass
class Call:
    method: str
    path: str
    body: Any = None


@pytest.fixture
def calls(world: World) -> dict[str, Call]:
    """Site A's patient pt-1 with a booked preparation session and an open hold."""
    world.ready()
    world.concern()
    in_progress = world.booked("preparation", world.at(0, "07:00"))
    world.clock.set(world.at(0, "06:55"))
    assert world.check_in(in_progress["session_id"]).status_code == 200
    session = world.booked("preparation", world.at(0, "09:00"))
    world.clock.set(world.at(0, "08:55"))
    hold_id = world.plan()["holds"][0]["hold_id"]
    sid = session["session_id"]
    new_start = world.at(2, "09:00")
    return {
        "book": Call("POST", "/sessions", world.body("preparation", world.at(3, "09:00"))),
        "get_session": Call("GET", f"/sessions/{sid}"),
        "reschedule": Call(
            "POST",
            f"/sessions/{sid}/reschedule",
            {
                "starts_at": new_start.isoformat(),
                "ends_at": (new_start + timedelta(hours=1)).isoformat(),
            },
        ),
        "cancel": Call("POST", f"/sessions/{sid}/cancel", {"reason": "patient_request"}),
        "check_in": Call("POST", f"/sessions/{sid}/check-in", {}),
        "complete": Call("POST", f"/sessions/{in_progress['session_id']}/complete"),
        "plan": Call("GET", "/patients/pt-1/plan"),
        "clear_hold": Call(
            "POST", f"/patients/pt-1/holds/{hold_id}/clear", {"reason": "risk assessed"}
        ),
        "update_site": Call("PATCH", "/sites/site-a", {"name": "North clinic"}),
        "add_room": Call("POST", "/sites/site-a/rooms", {"room_id": "room-a9", "name": "Nine"}),
        "add_clinician": Call(
            "POST",
            "/clinicians",
            {"clinician_id": "th-new", "role": "therapist", "sites": ["site-a"]},
        ),
    }


def send(world: World, call: Call, headers: dict[str, str]) -> Any:
    return world.client.request(call.method, call.path, json=call.body, headers=headers)


ALLOWED_PAIRS = [(e, r) for e in ENDPOINTS for r in ROLES if r in ALLOWED[e]]


@pytest.mark.parametrize(("endpoint", "role"), ALLOWED_PAIRS)
def test_allowed_role_at_the_patients_own_site(
    world: World, calls: dict[str, Call], endpoint: str, role: str
) -> None:
    response = send(world, calls[endpoint], token(f"{role}-1", role, ["site-a"]))
    assert response.status_code in (200, 201), response.text


@pytest.mark.parametrize("endpoint", ENDPOINTS)
def test_other_roles_at_the_own_site_and_every_role_of_another_site_get_403(
    world: World, calls: dict[str, Call], counts: Counts, endpoint: str
) -> None:
    before = counts()
    callers = [(role, ["site-a"]) for role in ROLES if role not in ALLOWED[endpoint]] + [
        (role, ["site-b"]) for role in ROLES
    ]
    for role, sites in callers:
        response = send(world, calls[endpoint], token(f"{role}-x", role, sites))
        assert response.status_code == 403, (role, sites, response.text)
        assert response.json()["error"]["code"] == "forbidden"
    assert counts() == before


@pytest.mark.parametrize("endpoint", ENDPOINTS)
def test_a_token_for_every_site_is_honoured_only_for_admin(
    world: World, calls: dict[str, Call], endpoint: str
) -> None:
    role = sorted(ALLOWED[endpoint])[0]
    response = send(world, calls[endpoint], token(f"{role}-all", role, ["*"]))
    assert_wildcard_sites_only_for_admin(response, role, admin_statuses=(200, 201))


@pytest.mark.parametrize("endpoint", ENDPOINTS)
def test_401_without_a_valid_token(
    world: World, calls: dict[str, Call], counts: Counts, endpoint: str
) -> None:
    before = counts()
    for name, headers in BAD_CREDENTIALS.items():
        response = send(world, calls[endpoint], headers)
        assert response.status_code == 401, name
        assert response.json()["error"]["code"] == "unauthenticated"
    assert counts() == before


def test_a_therapist_of_site_a_cannot_see_site_b_patients_plan(world: World) -> None:
    world.screen("pt-b", site_id="site-b")
    response = world.client.get(
        "/patients/pt-b/plan", headers=token("th-ben", "therapist", ["site-a"])
    )
    assert response.status_code == 403
    assert response.json()["error"]["message"] == "no access to site site-b"
    assert (
        world.client.get(
            "/patients/pt-b/plan", headers=token("th-bea", "therapist", ["site-b"])
        ).status_code
        == 200
    )


def test_booking_for_another_sites_patient_is_403_even_with_own_site_room(
    world: World, counts: Counts
) -> None:
    world.screen("pt-b", site_id="site-b")
    before = counts()
    response = world.book(
        "preparation",
        world.at(0),
        patient_id="pt-b",
        as_=token("co-amy", "coordinator", ["site-a"]),
    )
    assert response.status_code == 403
    assert counts() == before
