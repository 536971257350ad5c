"""FHIR R4 building blocks the services share (intake's Patient, records' Bundle).

The platform targets FHIR R4 and validates what it produces with the `R4B` models
of `fhir.resources` (R4B is R4 with small fixes; the package's top level is R5).
`fhir.resources` is a test dependency: `validate` imports it only when called.
"""

from __future__ import annotations

from typing import Any

from fastapi.responses import JSONResponse

FHIR_JSON = "application/fhir+json"
FHIR_VERSION = "4.0.1"
# The pseudonymous patient id every event carries, as a FHIR identifier system.
PATIENT_ID_SYSTEM = "urn:kap:patient-id"


class FhirResponse(JSONResponse):
    """JSON with FHIR's media type (`application/fhir+json`)."""

    media_type = FHIR_JSON


def patient_reference(patient_id: str) -> dict[str, str]:
    """`{"reference": "Patient/<id>"}`: how every resource points at its patient."""
    return {"reference": f"Patient/{patient_id}"}


def validate(resource: dict[str, Any]) -> Any:
    """Parse `resource` with the R4B model of its `resourceType`; raises
    pydantic's ValidationError when it is not valid FHIR. Returns the model."""
    from fhir.resources.R4B import get_fhir_model_class  # a test dependency

    return get_fhir_model_class(resource["resourceType"]).model_validate(resource)
