"""The clinic network directory: POST /sites, /sites/{id}/rooms, /clinicians."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from kap_shared.testing import rows, token

Headers = dict[str, str]

SITE = {"site_id": "site-a", "name": "North clinic", "timezone": "Europe/Berlin"}
ROOM = {"room_id": "room-1", "name": "Infusion suite 1"}
CLINICIAN = {
    "clinician_id": "rx-ada",
    "role": "prescriber",
    "sites": ["site-a"],
    "working_hours": {"mon": {"start": "08:00", "end": "17:00"}},
}


def counts(db: Path) -> dict[str, int]:
    return {
        table: rows(db, f"SELECT COUNT(*) FROM {table}")[0][0]  # noqa: S608 - fixed names
        for table in ("sites", "rooms", "clinicians", "plans", "outbox_messages")
    }


@pytest.fixture
def site(client: TestClient, admin: Headers) -> str:
    response = client.post("/sites", json=SITE, headers=admin)
    assert response.status_code == 201, response.text
    return "site-a"


# -- sites ------------------------------------------------------------------------------


def test_create_site_201(client: TestClient, admin: Headers, db: Path) -> None:
    response = client.post(
        "/sites", json={**SITE, "rems_certified_until": "2027-06-30"}, headers=admin
    )

    assert response.status_code == 201
    assert response.json() == {
        "site_id": "site-a",
        "name": "North clinic",
        "timezone": "Europe/Berlin",
        "rems_certified_until": "2027-06-30",
    }
    assert rows(db, "SELECT site_id, name FROM sites") == [("site-a", "North clinic")]


def test_create_site_twice_is_409_already_exists(
    client: TestClient, admin: Headers, site: str, db: Path
) -> None:
    response = client.post("/sites", json={**SITE, "name": "Other"}, headers=admin)

    assert response.status_code == 409
    assert response.json()["error"]["code"] == "already_exists"
    assert rows(db, "SELECT name FROM sites") == [("North clinic",)]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"name": "No id"}, "site_id"),
        ({"site_id": "site a!", "name": "Bad id"}, "site_id"),
        ({"site_id": "site-a"}, "name"),
        ({**SITE, "rems_certified_until": "soon"}, "rems_certified_until"),
        ({**SITE, "beds": 4}, "beds"),
    ],
)
def test_create_site_422_names_the_field(
    client: TestClient, admin: Headers, db: Path, body: dict[str, Any], field: str
) -> None:
    response = client.post("/sites", json=body, headers=admin)
    assert response.status_code == 422
    assert field in [d["field"] for d in response.json()["error"]["details"]]
    assert counts(db)["sites"] == 0


def test_admin_cannot_create_a_site_outside_their_token(client: TestClient, db: Path) -> None:
    response = client.post("/sites", json=SITE, headers=token("adm-2", "admin", ["site-b"]))
    assert response.status_code == 403
    assert counts(db)["sites"] == 0


def test_update_site_renews_the_rems_certification(
    client: TestClient, admin: Headers, site: str, db: Path
) -> None:
    response = client.patch(
        f"/sites/{site}", json={"rems_certified_until": "2028-01-31"}, headers=admin
    )

    assert response.status_code == 200
    assert response.json() == {**SITE, "rems_certified_until": "2028-01-31"}
    assert rows(db, "SELECT rems_certified_until FROM sites") == [("2028-01-31",)]


def test_update_site_changes_only_what_was_sent_and_null_withdraws_a_certification(
    client: TestClient, admin: Headers, db: Path
) -> None:
    body = {**SITE, "rems_certified_until": "2027-06-30"}
    assert client.post("/sites", json=body, headers=admin).status_code == 201

    renamed = client.patch("/sites/site-a", json={"name": "North"}, headers=admin)
    assert renamed.json()["rems_certified_until"] == "2027-06-30"
    withdrawn = client.patch("/sites/site-a", json={"rems_certified_until": None}, headers=admin)

    assert withdrawn.json() == {**SITE, "name": "North", "rems_certified_until": None}


def test_update_site_outside_the_token_is_403(client: TestClient, site: str) -> None:
    response = client.patch(
        f"/sites/{site}", json={"name": "X"}, headers=token("co-b", "coordinator", ["site-b"])
    )
    assert response.status_code == 403


# -- rooms --------------------------------------------------------------------------------


def test_add_room_201(client: TestClient, admin: Headers, site: str, db: Path) -> None:
    response = client.post(f"/sites/{site}/rooms", json=ROOM, headers=admin)

    assert response.status_code == 201
    assert response.json() == {"room_id": "room-1", "site_id": "site-a", "name": "Infusion suite 1"}
    assert rows(db, "SELECT room_id, site_id FROM rooms") == [("room-1", "site-a")]


def test_add_room_twice_is_409_already_exists(
    client: TestClient, admin: Headers, site: str, db: Path
) -> None:
    assert client.post(f"/sites/{site}/rooms", json=ROOM, headers=admin).status_code == 201

    response = client.post(f"/sites/{site}/rooms", json=ROOM, headers=admin)

    assert response.status_code == 409
    assert response.json()["error"]["code"] == "already_exists"
    assert counts(db)["rooms"] == 1


def test_add_room_on_unknown_site_is_404(client: TestClient, admin: Headers, db: Path) -> None:
    response = client.post("/sites/nowhere/rooms", json=ROOM, headers=admin)

    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"
    assert counts(db)["rooms"] == 0


def test_add_room_422_for_extra_field(
    client: TestClient, admin: Headers, site: str, db: Path
) -> None:
    response = client.post(f"/sites/{site}/rooms", json={**ROOM, "beds": 2}, headers=admin)
    assert response.status_code == 422
    assert response.json()["error"]["details"][0]["field"] == "beds"
    assert counts(db)["rooms"] == 0


# -- clinicians -------------------------------------------------------------------------------


def test_create_clinician_201(client: TestClient, admin: Headers, site: str, db: Path) -> None:
    response = client.post("/clinicians", json=CLINICIAN, headers=admin)

    assert response.status_code == 201
    assert response.json() == {
        "clinician_id": "rx-ada",
        "role": "prescriber",
        "sites": ["site-a"],
        "working_hours": {"mon": {"start": "08:00:00", "end": "17:00:00"}},
    }
    assert rows(db, "SELECT clinician_id, role FROM clinicians") == [("rx-ada", "prescriber")]


def test_create_clinician_twice_is_409_already_exists(
    client: TestClient, admin: Headers, site: str, db: Path
) -> None:
    assert client.post("/clinicians", json=CLINICIAN, headers=admin).status_code == 201

    response = client.post("/clinicians", json={**CLINICIAN, "role": "therapist"}, headers=admin)

    assert response.status_code == 409
    assert response.json()["error"]["code"] == "already_exists"
    assert rows(db, "SELECT role FROM clinicians") == [("prescriber",)]


def test_create_clinician_at_unknown_site_is_422_naming_sites(
    client: TestClient, admin: Headers, site: str, db: Path
) -> None:
    response = client.post(
        "/clinicians", json={**CLINICIAN, "sites": ["site-a", "site-x"]}, headers=admin
    )

    assert response.status_code == 422
    error = response.json()["error"]
    assert error["code"] == "validation_error"
    assert error["details"] == [{"field": "sites", "message": "unknown site site-x"}]
    assert counts(db)["clinicians"] == 0


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"role": "surgeon"}, "role"),
        ({"sites": []}, "sites"),
        ({"clinician_id": ""}, "clinician_id"),
        ({"working_hours": {"mon": {"start": "17:00", "end": "08:00"}}}, "working_hours.mon"),
        (
            {"working_hours": {"someday": {"start": "08:00", "end": "17:00"}}},
            "working_hours.someday",
        ),
        ({"email": "rx@example.org"}, "email"),
    ],
)
def test_create_clinician_422_names_the_field(
    client: TestClient,
    admin: Headers,
    site: str,
    db: Path,
    change: dict[str, Any],
    field: str,
) -> None:
    response = client.post("/clinicians", json={**CLINICIAN, **change}, headers=admin)
    assert response.status_code == 422
    fields = [d["field"] for d in response.json()["error"]["details"]]
    assert any(f == field or f.startswith(field + ".") for f in fields), fields
    assert counts(db)["clinicians"] == 0


# -- role matrix -------------------------------------------------------------------------------


def _directory_calls(site: str) -> list[tuple[str, dict[str, Any]]]:
    return [
        ("/sites", {"site_id": "site-new", "name": "New"}),
        (f"/sites/{site}/rooms", ROOM),
        ("/clinicians", CLINICIAN),
    ]


@pytest.mark.parametrize("role", ["admin", "coordinator"])
def test_admin_and_coordinator_may_edit_the_directory(
    client: TestClient, site: str, role: str
) -> None:
    caller = token(f"{role}-1", role, ["site-a", "site-new"])
    for path, body in _directory_calls(site):
        response = client.post(path, json=body, headers=caller)
        assert response.status_code == 201, (path, response.text)


@pytest.mark.parametrize("role", ["therapist", "prescriber", "nurse", "device"])
def test_clinical_roles_may_not_edit_the_directory(
    client: TestClient, site: str, db: Path, role: str
) -> None:
    before = counts(db)
    caller = token(f"{role}-1", role, ["*"])
    for path, body in _directory_calls(site):
        response = client.post(path, json=body, headers=caller)
        assert response.status_code == 403, path
        assert response.json()["error"]["code"] == "forbidden"
    assert counts(db) == before


def test_directory_401_without_a_token(client: TestClient, site: str) -> None:
    for path, body in _directory_calls(site):
        response = client.post(path, json=body)
        assert response.status_code == 401, path
        assert response.json()["error"]["code"] == "unauthenticated"


def test_coordinator_of_another_site_gets_403_on_rooms_and_clinicians(
    client: TestClient, site: str, db: Path
) -> None:
    caller = token("co-b", "coordinator", ["site-b"])
    assert client.post(f"/sites/{site}/rooms", json=ROOM, headers=caller).status_code == 403
    assert client.post("/clinicians", json=CLINICIAN, headers=caller).status_code == 403
    assert counts(db)["rooms"] == counts(db)["clinicians"] == 0
