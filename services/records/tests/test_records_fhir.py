"""FHIR R4 `$everything`: a Bundle (collection) whose every resource validates
against the R4B models of `fhir.resources`, with the LOINC codes and UCUM units of
the list, references to Patient/{id}, and no PHI."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from fastapi.testclient import TestClient
from support import CARE_RECORD_RESOURCE_TYPES, validated_fhir_resources

from kap_shared.testing import token

Story = Any  # conftest.Story
COORDINATOR = token("co-amy", "coordinator", ["site-a"])
OTHER_SITE = token("co-zed", "coordinator", ["site-b"])
T0 = datetime.combine(date.today() + timedelta(days=30), time(14, 0), UTC)
LOINC = "http://loinc.org"
# The codes the issue lists, and nothing else.
ALLOWED_LOINC = {
    "85354-9",
    "8480-6",
    "8462-4",
    "8867-4",
    "2708-6",
    "59408-5",
    "9279-1",
    "44261-6",
    "44260-8",
    "70274-6",
}


def _bundle(client: TestClient) -> dict[str, Any]:
    response = client.get("/fhir/Patient/pt-1/$everything", headers=COORDINATOR)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/fhir+json")
    bundle: dict[str, Any] = response.json()
    return bundle


def _codes(resource: dict[str, Any]) -> list[str]:
    codings = list(resource.get("code", {}).get("coding", []))
    for component in resource.get("component", []):
        codings += component["code"]["coding"]
    assert all(c["system"] == LOINC for c in codings)
    return [c["code"] for c in codings]


def test_everything_bundle_validates_against_R4(client: TestClient, story: Story) -> None:
    story.intake_and_plan(T0)
    story.dosing_session("s-1", T0, critical_alert=True)
    bundle = _bundle(client)
    resources = validated_fhir_resources(bundle)
    assert bundle["type"] == "collection"
    kinds = Counter(r["resourceType"] for r in resources)
    assert set(kinds) == CARE_RECORD_RESOURCE_TYPES
    assert kinds["MedicationAdministration"] == 2
    assert len({r["id"] for r in resources}) == len(resources)
    text = str(bundle)
    assert "Zelphine" not in text  # the alert's free text never reaches the record


def test_observation_codes_categories_and_units(client: TestClient, story: Story) -> None:
    story.intake_and_plan(T0)
    story.dosing_session("s-1", T0)
    resources = [e["resource"] for e in _bundle(client)["entry"]]
    observations = [r for r in resources if r["resourceType"] == "Observation"]
    seen: set[str] = set()
    for obs in observations:
        codes = _codes(obs)
        seen |= set(codes)
        assert set(codes) <= ALLOWED_LOINC
        assert obs["subject"] == {"reference": "Patient/pt-1"}
        category = obs["category"][0]["coding"][0]["code"]
        if codes[0] in {"44261-6", "44260-8", "70274-6"}:
            assert category == "survey"
            assert obs["valueQuantity"]["code"] == "{score}"
        else:
            assert category == "vital-signs"
    assert seen == ALLOWED_LOINC - {"9279-1"}  # no respiratory rate was recorded
    bp = next(o for o in observations if _codes(o)[0] == "85354-9")
    assert [c["valueQuantity"]["code"] for c in bp["component"]] == ["mm[Hg]", "mm[Hg]"]
    spo2 = next(o for o in observations if _codes(o)[0] == "2708-6")
    assert _codes(spo2) == ["2708-6", "59408-5"]
    assert spo2["valueQuantity"]["code"] == "%"
    heart = next(o for o in observations if _codes(o) == ["8867-4"])
    assert heart["valueQuantity"]["code"] == "/min"
    phq9 = next(o for o in observations if _codes(o) == ["44261-6"])
    assert phq9["valueQuantity"]["value"] == 16


def test_references_point_to_the_patient(client: TestClient, story: Story) -> None:
    story.intake_and_plan(T0)
    story.dosing_session("s-1", T0, critical_alert=True)
    for entry in _bundle(client)["entry"]:
        resource = entry["resource"]
        reference = (
            resource.get("subject")
            or resource.get("patient")
            or next(p["actor"] for p in resource["participant"] if "reference" in p["actor"])
        )
        assert reference == {"reference": "Patient/pt-1"}, resource["resourceType"]


def test_everything_needs_the_patients_site(client: TestClient, story: Story) -> None:
    story.intake_and_plan(T0)
    assert client.get("/fhir/Patient/pt-1/$everything", headers=OTHER_SITE).status_code == 403
    assert client.get("/fhir/Patient/pt-9/$everything", headers=COORDINATOR).status_code == 404
