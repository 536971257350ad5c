"""Every endpoint's OpenAPI lists every status it can return, each error with the
platform's schema `{"error": {"code", "message", "details"?}}` (issue 9 section 5)."""

from __future__ import annotations

from fastapi.testclient import TestClient

from kap_shared.testing import assert_openapi_errors

# Every authenticated endpoint: 401 (no token), 403 (role, site, '*' claim), 422 (input),
# 503 (not ready); the use cases add 404 (unknown id) and 409 (a rule refuses).
OPERATIONS = {
    "GET /healthz": set(),
    "GET /readyz": {503},
    "GET /metrics": set(),
    "GET /asyncapi": set(),
}
API = {401, 403, 422, 503}
EXPECTED = {
    **OPERATIONS,
    "PUT /recipients/{clinician_id}": API,
    "GET /recipients/{clinician_id}": API | {404},
    "PUT /sites/{site_id}/escalation": API,
    "GET /sites/{site_id}/escalation": API,
    "GET /inbox": API,
    "GET /inbox/stream": API,
    # 409: the same Idempotency-Key with another request (`idempotency_key_reused`)
    "POST /notifications/{notification_id}/ack": API | {404, 409},
    "GET /patients/{patient_id}/measurement-schedule": API | {404},
    "GET /alerts": API,
}


def test_openapi_documents_every_error_status_with_the_error_schema(client: TestClient) -> None:
    response = client.get("/openapi.json")
    assert response.status_code == 200
    assert_openapi_errors(response.json(), EXPECTED)
