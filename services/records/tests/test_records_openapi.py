"""Every endpoint's OpenAPI lists every status it can return, each error with the
platform's schema `{"error": {"code", "message", "details"?}}` (issue 9 section 5), and
records answers the operational endpoints as every service does (CONTRACT section 4)."""

from __future__ import annotations

from fastapi.testclient import TestClient

from kap_shared import testing_ops as ops
from kap_shared.testing_ops import API_ERRORS as API

# Besides the operational endpoints (kap_shared.testing_ops.OPERATIONAL_ENDPOINTS);
# 404: an unknown patient or form.
EXPECTED = {
    "GET /patients/{patient_id}/timeline": API | {404},
    "GET /fhir/Patient/{patient_id}/$everything": API | {404},
    "GET /pmf": API | {404},
    "GET /pmf/{pmf_id}": API | {404},
    "GET /pmf/{pmf_id}/print": API | {404},
    # 409: SPR-PMF-1 (the form is incomplete) or PMF-STATE-1 (already submitted)
    "PATCH /pmf/{pmf_id}": API | {404, 409},
    "POST /pmf/{pmf_id}/submit": API | {404, 409},
}


def test_openapi_documents_every_error_status_with_the_error_schema(client: TestClient) -> None:
    ops.assert_openapi_documents(client, EXPECTED)


class TestOperationalEndpoints(ops.OperationalEndpoints):
    """/healthz, /readyz, /docs and a path for every operation listed above."""

    api = EXPECTED
