"""Every endpoint's OpenAPI lists every status it can return, each error with the
platform's schema `{"error": {"code", "message", "details"?}}` (issue 9 section 5)."""

from __future__ import annotations

from fastapi.testclient import TestClient

from kap_shared.testing_ops import API_ERRORS as API
from kap_shared.testing_ops import assert_openapi_documents

# Besides the operational endpoints (kap_shared.testing_ops.OPERATIONAL_ENDPOINTS).
EXPECTED = {
    "POST /patients": API | {409},
    "GET /patients/{patient_id}": API | {404},
    "GET /patients/display-names": API,
    "POST /patients/{patient_id}/screenings": API | {404, 409},
    "POST /patients/{patient_id}/screenings/{screening_id}/review": API | {404, 409},
    "POST /patients/{patient_id}/consents": API | {404, 409},
    "GET /fhir/Patient/{patient_id}": API | {404},
    "GET /audit": API,
}


def test_openapi_documents_every_error_status_with_the_error_schema(client: TestClient) -> None:
    assert_openapi_documents(client, EXPECTED)


def test_fhir_patient_is_documented_as_fhir_json(client: TestClient) -> None:
    operation = client.get("/openapi.json").json()["paths"]["/fhir/Patient/{patient_id}"]["get"]
    assert list(operation["responses"]["200"]["content"]) == ["application/fhir+json"]
