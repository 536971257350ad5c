"""FHIR R4 resources for a patient's care record (`$everything`), built from the
record's coded facts. Targets R4 (validated in the tests against `fhir.resources`
R4B, which is R4 with small fixes). Pure: no I/O.

Codes (LOINC, UCUM) as the rulebook's FHIR mapping and tech-notes G.3 list them.
The Patient resource itself (names, birth date) lives at intake: every resource
here refers to `Patient/{id}` and holds no PHI.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from kap_shared.events.enums import SessionStatus

LOINC = "http://loinc.org"
UCUM = "http://unitsofmeasure.org"
OBSERVATION_CATEGORY = "http://terminology.hl7.org/CodeSystem/observation-category"

BP_PANEL, SYSTOLIC, DIASTOLIC = "85354-9", "8480-6", "8462-4"
HEART_RATE, RESPIRATORY_RATE = "8867-4", "9279-1"
SPO2, SPO2_PULSE_OXIMETRY = "2708-6", "59408-5"
PHQ9_TOTAL, PHQ9_ITEM9, GAD7_TOTAL = "44261-6", "44260-8", "70274-6"
PHQ9_PANEL, GAD7_PANEL = "44249-1", "69737-5"

LOINC_DISPLAY = {
    BP_PANEL: "Blood pressure panel with all children optional",
    SYSTOLIC: "Systolic blood pressure",
    DIASTOLIC: "Diastolic blood pressure",
    HEART_RATE: "Heart rate",
    RESPIRATORY_RATE: "Respiratory rate",
    SPO2: "Oxygen saturation in Arterial blood",
    SPO2_PULSE_OXIMETRY: "Oxygen saturation in Arterial blood by Pulse oximetry",
    PHQ9_TOTAL: "Patient Health Questionnaire 9 item (PHQ-9) total score [Reported]",
    PHQ9_ITEM9: "Thoughts that you would be better off dead, or of hurting yourself in some way",
    GAD7_TOTAL: "Generalized anxiety disorder 7 item (GAD-7) total score [Reported.PHQ]",
}
_NAMESPACE = uuid.UUID("a3c6f0c2-8d0e-4d8f-9c43-6b2f1f0f3e77")


def resource_id(*parts: str) -> str:
    """A valid FHIR id (<= 64 chars), the same for the same fact on every read."""
    return str(uuid.uuid5(_NAMESPACE, "/".join(parts)))


def _coding(code: str) -> dict[str, Any]:
    return {"system": LOINC, "code": code, "display": LOINC_DISPLAY[code]}


def _category(code: str) -> list[dict[str, Any]]:
    display = {"vital-signs": "Vital Signs", "survey": "Survey"}[code]
    return [{"coding": [{"system": OBSERVATION_CATEGORY, "code": code, "display": display}]}]


def _quantity(value: float, unit: str) -> dict[str, Any]:
    return {"value": value, "unit": unit, "system": UCUM, "code": unit}


@dataclass(frozen=True)
class Subject:
    patient_id: str

    @property
    def reference(self) -> dict[str, str]:
        return {"reference": f"Patient/{self.patient_id}"}


def vital_observations(
    subject: Subject, key: str, at: str, values: Mapping[str, Any]
) -> list[dict[str, Any]]:
    """Vital-sign Observations of one reading (or a screening's baseline)."""
    base = {
        "resourceType": "Observation",
        "status": "final",
        "category": _category("vital-signs"),
        "subject": subject.reference,
        "effectiveDateTime": at,
    }
    out: list[dict[str, Any]] = []
    sys, dia = values.get("bp_systolic"), values.get("bp_diastolic")
    if sys is not None and dia is not None:
        out.append(
            {
                **base,
                "id": resource_id(key, BP_PANEL),
                "code": {"coding": [_coding(BP_PANEL)], "text": "Blood pressure"},
                "component": [
                    {
                        "code": {"coding": [_coding(SYSTOLIC)]},
                        "valueQuantity": _quantity(sys, "mm[Hg]"),
                    },
                    {
                        "code": {"coding": [_coding(DIASTOLIC)]},
                        "valueQuantity": _quantity(dia, "mm[Hg]"),
                    },
                ],
            }
        )
    singles = (
        ("heart_rate", [HEART_RATE], "/min", "Heart rate"),
        ("respiratory_rate", [RESPIRATORY_RATE], "/min", "Respiratory rate"),
        ("spo2", [SPO2, SPO2_PULSE_OXIMETRY], "%", "Oxygen saturation"),
    )
    for metric, codes, unit, text in singles:
        value = values.get(metric)
        if value is None:
            continue
        out.append(
            {
                **base,
                "id": resource_id(key, codes[0]),
                "code": {"coding": [_coding(c) for c in codes], "text": text},
                "valueQuantity": _quantity(value, unit),
            }
        )
    return out


def score_observation(
    subject: Subject, key: str, at: str, code: str, value: float
) -> dict[str, Any]:
    return {
        "resourceType": "Observation",
        "id": resource_id(key, code),
        "status": "final",
        "category": _category("survey"),
        "code": {"coding": [_coding(code)]},
        "subject": subject.reference,
        "effectiveDateTime": at,
        "valueQuantity": _quantity(value, "{score}"),
    }


def questionnaire_response(
    subject: Subject, key: str, at: str, panel: str, answers: Sequence[tuple[str, int]]
) -> dict[str, Any]:
    """The scored answers records knows (totals, PHQ-9 item 9), by LOINC link id."""
    return {
        "resourceType": "QuestionnaireResponse",
        "id": resource_id(key, panel),
        "status": "completed",
        "questionnaire": f"{LOINC}/q/{panel}",
        "subject": subject.reference,
        "authored": at,
        "item": [
            {
                "linkId": code,
                "text": LOINC_DISPLAY[code],
                "answer": [{"valueInteger": value}],
            }
            for code, value in answers
        ],
    }


def care_plan(
    subject: Subject, plan: Mapping[str, Any], current_phase: str | None
) -> dict[str, Any]:
    order = ["preparation", "dosing", "integration"]
    reached = order.index(current_phase) if current_phase in order else -1
    activities = []
    for index, phase in enumerate(order):
        status = (
            "completed" if index < reached else "in-progress" if index == reached else "not-started"
        )
        activities.append({"detail": {"status": status, "code": {"text": phase}}})
    return {
        "resourceType": "CarePlan",
        "id": resource_id("plan", plan["plan_id"]),
        "identifier": [{"system": "urn:kap:plan", "value": plan["plan_id"]}],
        "status": "active",
        "intent": "plan",
        "title": plan["protocol"],
        "description": (
            f"{plan['protocol']} ({plan['route']}): "
            f"{plan['planned_dosing_sessions']} dosing sessions"
        ),
        "subject": subject.reference,
        "created": plan["created_at"],
        "activity": activities,
    }


# scheduling's session status -> FHIR Appointment.status
APPOINTMENT_STATUS = {
    SessionStatus.SCHEDULED: "booked",
    SessionStatus.CHECKED_IN: "arrived",
    SessionStatus.COMPLETED: "fulfilled",
    SessionStatus.CANCELLED: "cancelled",
}


def appointment(subject: Subject, session: Mapping[str, Any]) -> dict[str, Any]:
    participants = [{"actor": subject.reference, "status": "accepted"}]
    for role in ("prescriber_id", "therapist_id", "nurse_id"):
        if clinician := session.get(role):
            participants.append(
                {
                    "actor": {"identifier": {"system": "urn:kap:clinician", "value": clinician}},
                    "status": "accepted",
                }
            )
    return {
        "resourceType": "Appointment",
        "id": resource_id("session", session["session_id"]),
        "identifier": [{"system": "urn:kap:session", "value": session["session_id"]}],
        "status": APPOINTMENT_STATUS.get(session["status"], "booked"),
        "serviceType": [{"text": f"{session['phase']} session {session['sequence']}"}],
        "start": session["starts_at"],
        "end": session["ends_at"],
        "participant": participants,
    }


def medication_administration(
    subject: Subject, event_id: str, at: str, dose: Mapping[str, Any]
) -> dict[str, Any]:
    resource: dict[str, Any] = {
        "resourceType": "MedicationAdministration",
        "id": resource_id("dose", event_id),
        "status": "completed",
        "medicationCodeableConcept": {"text": str(dose["agent"])},
        "subject": subject.reference,
        "effectiveDateTime": dose["administered_at"],
        "dosage": {
            "route": {"text": str(dose["route"])},
            "dose": _quantity(float(dose["dose_mg"]), "mg"),
        },
    }
    notes = []
    if dose.get("device_number"):
        notes.append(f"device {dose['device_number']}")
    if dose.get("lot_number"):
        notes.append(f"lot {dose['lot_number']}")
    if notes:
        resource["note"] = [{"text": ", ".join(notes)}]
    return resource


SEVERITY = {"critical": "high", "warning": "moderate", "info": "low"}


def detected_issue(
    subject: Subject, event_id: str, at: str, alert: Mapping[str, Any], resolved: bool
) -> dict[str, Any]:
    return {
        "resourceType": "DetectedIssue",
        "id": resource_id("alert", event_id),
        "identifier": [{"system": "urn:kap:alert", "value": alert["alert_id"]}],
        "status": "final" if resolved else "preliminary",
        "code": {"text": f"{alert['rule_id']} {alert['metric']}"},
        "severity": SEVERITY.get(str(alert["severity"]), "low"),
        "patient": subject.reference,
        "identifiedDateTime": at,
        "detail": f"{alert['metric']} {alert['value']} (threshold {alert['threshold']})",
    }


def flag(subject: Subject, event_id: str, at: str, text: str, active: bool) -> dict[str, Any]:
    return {
        "resourceType": "Flag",
        "id": resource_id("flag", event_id),
        "status": "active" if active else "inactive",
        "category": [
            {
                "coding": [
                    {
                        "system": "http://terminology.hl7.org/CodeSystem/flag-category",
                        "code": "clinical",
                        "display": "Clinical",
                    }
                ]
            }
        ],
        "code": {"text": text},
        "subject": subject.reference,
        "period": {"start": at},
    }


PRIORITY = {"routine", "urgent", "asap", "stat"}


def communication(
    subject: Subject, event_id: str, at: str, sent: Mapping[str, Any]
) -> dict[str, Any]:
    priority = str(sent.get("priority"))
    resource: dict[str, Any] = {
        "resourceType": "Communication",
        "id": resource_id("notification", event_id),
        "identifier": [{"system": "urn:kap:notification", "value": sent["notification_id"]}],
        "status": "completed",
        "subject": subject.reference,
        "sent": at,
        "recipient": [
            {"identifier": {"system": "urn:kap:clinician", "value": sent["recipient_id"]}}
        ],
        "medium": [{"text": str(sent["channel"])}],
    }
    if priority in PRIORITY:
        resource["priority"] = priority
    return resource


def bundle(patient_id: str, resources: Iterable[dict[str, Any]], timestamp: str) -> dict[str, Any]:
    return {
        "resourceType": "Bundle",
        "id": resource_id("everything", patient_id, timestamp),
        "type": "collection",
        "timestamp": timestamp,
        "entry": [{"fullUrl": f"urn:uuid:{r['id']}", "resource": r} for r in resources],
    }
