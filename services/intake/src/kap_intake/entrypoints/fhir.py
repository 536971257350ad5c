"""Intake's record as a FHIR R4 Patient (PHI: served only to the care team, audited)."""

from __future__ import annotations

from typing import Any

from kap_shared.fhir import PATIENT_ID_SYSTEM

from ..adapters.tables import Patient


def patient_resource(patient: Patient) -> dict[str, Any]:
    """identifier = the pseudonymous id the events carry; name, birthDate, telecom."""
    telecom = [
        {"system": system, "value": value}
        for system, value in (("phone", patient.phone), ("email", patient.email))
        if value
    ]
    resource: dict[str, Any] = {
        "resourceType": "Patient",
        "id": patient.patient_id,
        "identifier": [{"system": PATIENT_ID_SYSTEM, "value": patient.patient_id}],
        "active": True,
        "name": [{"use": "official", "family": patient.family_name, "given": [patient.given_name]}],
        "birthDate": patient.date_of_birth.isoformat(),
    }
    if telecom:
        resource["telecom"] = telecom
    return resource
