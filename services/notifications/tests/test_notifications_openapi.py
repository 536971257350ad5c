"""Every endpoint's OpenAPI lists every status it can return, each error with the
platform's schema `{"error": {"code", "message", "details"?}}` (issue 9 section 5)."""

from __future__ import annotations

from fastapi.testclient import TestClient

from kap_shared.testing_ops import API_ERRORS as API
from kap_shared.testing_ops import assert_openapi_documents

# Besides the operational endpoints (kap_shared.testing_ops.OPERATIONAL_ENDPOINTS).
EXPECTED = {
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
    assert_openapi_documents(client, EXPECTED)
