"""GET /fhir/Patient/{id}: intake's record as a FHIR R4 Patient, validated with the
R4B models of `fhir.resources` (CONTRACT 6.3)."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient

from kap_shared.fhir import PATIENT_ID_SYSTEM, validate
from kap_shared.testing import token

Headers = dict[str, str]


def test_the_patient_is_a_valid_fhir_r4_patient(
    client: TestClient, patient_id: str, prescriber: Headers, referral: dict[str, Any]
) -> None:
    response = client.get(f"/fhir/Patient/{patient_id}", headers=prescriber)

    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/fhir+json")
    resource = response.json()
    patient = validate(resource)
    assert patient.get_resource_type() == "Patient"
    assert patient.id == patient_id
    assert [(i.system, i.value) for i in patient.identifier] == [(PATIENT_ID_SYSTEM, patient_id)]
    [name] = patient.name
    assert (name.family, name.given) == (referral["family_name"], [referral["given_name"]])
    assert patient.birthDate.isoformat() == referral["date_of_birth"]
    assert sorted((t.system, t.value) for t in patient.telecom) == [
        ("email", referral["contact"]["email"]),
        ("phone", referral["contact"]["phone"]),
    ]


def test_a_patient_without_contacts_has_no_telecom(
    client: TestClient, therapist: Headers, referral: dict[str, Any]
) -> None:
    del referral["contact"]
    patient_id = client.post("/patients", json=referral, headers=therapist).json()["patient_id"]
    resource = client.get(f"/fhir/Patient/{patient_id}", headers=therapist).json()
    validate(resource)
    assert "telecom" not in resource


def test_fhir_patient_follows_the_site_and_role_rules(client: TestClient, patient_id: str) -> None:
    other_site = client.get(f"/fhir/Patient/{patient_id}", headers=token("rx", "prescriber", ["b"]))
    assert other_site.status_code == 403
    assert other_site.json()["error"]["code"] == "forbidden"
    device = client.get(f"/fhir/Patient/{patient_id}", headers=token("gw", "device", ["site-a"]))
    assert device.status_code == 403
    unknown = client.get("/fhir/Patient/nope", headers=token("rx", "prescriber", ["site-a"]))
    assert unknown.status_code == 404
    assert unknown.json()["error"]["code"] == "not_found"
