"""Every endpoint's OpenAPI lists every status it can return, each error with the
platform's schema `{"error": {"code", "message", "details"?}}` (issue 9 section 5)."""

from __future__ import annotations

from fastapi.testclient import TestClient

from kap_shared.testing import assert_openapi_errors

# Every authenticated endpoint: 401 (no token), 403 (role, site, '*' claim), 422 (input),
# 503 (not ready); the use cases add 404 (unknown id) and 409 (a rule refuses); a POST
# that takes an Idempotency-Key adds 409 (`idempotency_key_reused`).
OPERATIONS = {
    "GET /healthz": set(),
    "GET /readyz": {503},
    "GET /metrics": set(),
    "GET /asyncapi": set(),
}
API = {401, 403, 422, 503}
EXPECTED = {
    **OPERATIONS,
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
    response = client.get("/openapi.json")
    assert response.status_code == 200
    assert_openapi_errors(response.json(), EXPECTED)


def test_fhir_patient_is_documented_as_fhir_json(client: TestClient) -> None:
    operation = client.get("/openapi.json").json()["paths"]["/fhir/Patient/{patient_id}"]["get"]
    assert list(operation["responses"]["200"]["content"]) == ["application/fhir+json"]
