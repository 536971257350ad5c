"""Operational endpoints every service has (CONTRACT section 4)."""

from __future__ import annotations

from kap_shared import testing_ops as ops
from kap_shared.testing_ops import API_ERRORS as API


class TestOperationalEndpoints(ops.OperationalEndpoints):
    """/healthz, /readyz, /docs, and every operation's error statuses in its OpenAPI."""

    # Each operation and the error statuses its OpenAPI documents, besides the
    # operational endpoints (kap_shared.testing_ops.OPERATIONAL_ENDPOINTS);
    # 404: an unknown patient or form.
    api = {
        "GET /patients/{patient_id}/timeline": API | {404},
        "GET /fhir/Patient/{patient_id}/$everything": API | {404},
        "GET /pmf": API | {404},
        "GET /pmf/{pmf_id}": API | {404},
        "GET /pmf/{pmf_id}/print": API | {404},
        # 409: SPR-PMF-1 (the form is incomplete) or PMF-STATE-1 (already submitted)
        "PATCH /pmf/{pmf_id}": API | {404, 409},
        "POST /pmf/{pmf_id}/submit": API | {404, 409},
    }
