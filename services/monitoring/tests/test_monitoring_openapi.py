"""Every endpoint's OpenAPI lists every status it can return, each error with the
platform's schema `{"error": {"code", "message", "details"?}}` (issue 9 section 5)."""

from __future__ import annotations

from fastapi.testclient import TestClient

from kap_shared.testing_ops import API_ERRORS as API
from kap_shared.testing_ops import assert_openapi_documents

# Besides the operational endpoints (kap_shared.testing_ops.OPERATIONAL_ENDPOINTS).
EXPECTED = {
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
    assert_openapi_documents(client, EXPECTED)
