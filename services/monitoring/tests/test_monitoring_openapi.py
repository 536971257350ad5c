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
    "GET /sessions/{session_id}": API | {404},
    "GET /sites/{site_id}/sessions": API,
    "POST /sessions/{session_id}/vitals": API | {404, 409},
    "POST /sessions/{session_id}/doses": API | {404, 409},
    "POST /sessions/{session_id}/predose-decision": API | {404, 409},
    "POST /sessions/{session_id}/alerts/{alert_id}/resolve": API | {404, 409},
    "POST /sessions/{session_id}/discharge": API | {404, 409},
    "POST /sessions/{session_id}/safety-concerns/{concern_id}/resolve": API | {404, 409},
    "POST /sessions/{session_id}/stability-assessment": API | {404, 409},
    # 409: an Idempotency-Key reused with another body.
    "POST /patients/{patient_id}/measures": API | {404, 409},
}


def test_openapi_documents_every_error_status_with_the_error_schema(client: TestClient) -> None:
    response = client.get("/openapi.json")
    assert response.status_code == 200
    assert_openapi_errors(response.json(), EXPECTED)
