"""Every endpoint's OpenAPI lists every status it can return, each error with the
platform's schema `{"error": {"code", "message", "details"?}}` (issue 9 section 5)."""

from __future__ import annotations

from fastapi.testclient import TestClient

from kap_shared.testing_ops import API_ERRORS as API
from kap_shared.testing_ops import assert_openapi_documents

# Besides the operational endpoints (kap_shared.testing_ops.OPERATIONAL_ENDPOINTS).
EXPECTED = {
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
    assert_openapi_documents(client, EXPECTED)
