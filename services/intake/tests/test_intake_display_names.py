"""GET /patients/display-names: the names a floor board shows, for many patients in
one call. Same roles and site rule as GET /patients/{id}; every patient asked about
leaves its own audit record (actor, patient, action, resource, outcome), refusals
included; only the given name and the family initial are disclosed."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient

from kap_shared.testing import token

from .conftest import REFERRAL

Headers = dict[str, str]
ADMIN = token("adm-1", "admin", ["*"])
NURSE_A = token("rn-cleo", "nurse", ["site-a"])


def register(client: TestClient, headers: Headers, **changes: Any) -> str:
    response = client.post("/patients", json={**REFERRAL, **changes}, headers=headers)
    assert response.status_code == 201, response.text
    patient_id: str = response.json()["patient_id"]
    return patient_id


def names(client: TestClient, headers: Headers, *ids: str) -> Any:
    return client.get("/patients/display-names", params={"ids": list(ids)}, headers=headers)


def display_name_records(client: TestClient, actor: str) -> list[dict[str, Any]]:
    response = client.get("/audit", params={"actor": actor, "limit": 500}, headers=ADMIN)
    assert response.status_code == 200, response.text
    return [r for r in response.json() if r["resource"] == "display_name"]


def test_names_of_several_patients_in_one_call_each_read_audited(
    client: TestClient, therapist: Headers
) -> None:
    first = register(client, therapist)
    second = register(client, therapist, given_name="Ines", family_name="Zhao")

    response = names(client, NURSE_A, second, first, "no-such-patient", first)

    assert response.status_code == 200, response.text
    body = response.json()
    assert body == {
        "patients": [
            {"patient_id": second, "site_id": "site-a", "display_name": "Ines Z."},
            {"patient_id": first, "site_id": "site-a", "display_name": "Marguerite O."},
        ],
        "not_found": ["no-such-patient"],
    }
    assert "Okonkwo" not in response.text  # the family name itself is not disclosed
    assert REFERRAL["date_of_birth"] not in response.text
    records = display_name_records(client, "rn-cleo")
    by_patient = {r["patient_id"]: r for r in records}
    assert len(records) == 3  # one per patient asked about (the repeated id once)
    for patient_id in (first, second):
        record = by_patient[patient_id]
        assert (record["action"], record["status"], record["outcome"]) == ("read", 200, "allowed")
        assert (record["role"], record["site_id"]) == ("nurse", "site-a")
        assert record["path"] == "/patients/display-names"
    unknown = by_patient["no-such-patient"]
    assert (unknown["status"], unknown["outcome"], unknown["site_id"]) == (404, "not_found", None)


def test_a_patient_of_another_site_refuses_the_whole_request_and_is_audited(
    client: TestClient, therapist: Headers
) -> None:
    mine = register(client, therapist)
    theirs = register(client, token("th-bea", "therapist", ["site-b"]), site_id="site-b")

    response = names(client, NURSE_A, mine, theirs)

    assert response.status_code == 403
    assert response.json()["error"]["code"] == "forbidden"
    assert "Marguerite" not in response.text  # nothing disclosed, not even the own site's
    records = {r["patient_id"]: r for r in display_name_records(client, "rn-cleo")}
    assert set(records) == {mine, theirs}
    assert {(r["status"], r["outcome"]) for r in records.values()} == {(403, "refused")}
    assert records[theirs]["site_id"] == "site-b"  # the refusal names the patient's site
    assert records[mine]["site_id"] == "site-a"


def test_role_and_input_refusals(client: TestClient, therapist: Headers) -> None:
    patient = register(client, therapist)
    device = token("gw-1", "device", ["site-a"])
    assert names(client, device, patient).status_code == 403
    [refused] = display_name_records(client, "gw-1")
    assert (refused["patient_id"], refused["outcome"]) == (patient, "refused")

    missing = client.get("/patients/display-names", headers=NURSE_A)
    assert missing.status_code == 422
    assert missing.json()["error"]["details"][0]["field"].endswith("ids")
    too_many = names(client, NURSE_A, *[f"p-{n}" for n in range(201)])
    assert too_many.status_code == 422
    assert client.get("/patients/display-names", params={"ids": patient}).status_code == 401
