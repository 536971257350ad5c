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
    "POST /sites": API | {409},
    "PATCH /sites/{site_id}": API | {404},
    "POST /sites/{site_id}/rooms": API | {404, 409},
    "POST /clinicians": API | {409},
    "GET /patients/{patient_id}/plan": API | {404},
    "POST /patients/{patient_id}/holds/{hold_id}/clear": API | {404, 409},
    "POST /sessions": API | {409},
    "GET /sessions/{session_id}": API | {404},
    "GET /sites/{site_id}/sessions": API,
    "POST /sessions/{session_id}/reschedule": API | {404, 409},
    "POST /sessions/{session_id}/cancel": API | {404, 409},
    "POST /sessions/{session_id}/check-in": API | {404, 409},
    "POST /sessions/{session_id}/complete": API | {404, 409},
}


def test_openapi_documents_every_error_status_with_the_error_schema(client: TestClient) -> None:
    response = client.get("/openapi.json")
    assert response.status_code == 200
    assert_openapi_errors(response.json(), EXPECTED)
