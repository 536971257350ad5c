"""`GET /fhir/Patient/{id}/$everything`: the patient's care record as a FHIR R4
Bundle (type collection), from the record's entries and readings."""

from __future__ import annotations

from typing import Any

from sqlmodel.ext.asyncio.session import AsyncSession

from kap_shared.events.envelope import as_utc, utc_now

from ..adapters import repository as repo
from ..adapters.tables import Entry, PlanFact, Reading, SessionFact
from ..domain import fhir


def _iso(value: Any) -> str:
    return as_utc(value).isoformat().replace("+00:00", "Z")


async def everything(session: AsyncSession, patient_id: str) -> dict[str, Any]:
    subject = fhir.Subject(patient_id)
    entries = await repo.listed(session, Entry, Entry.patient_id == patient_id)
    resources: list[dict[str, Any]] = []
    phase = None
    for entry in entries:
        if entry.event_type == "PhaseAdvanced":
            phase = entry.data.get("to_phase")
    for plan in await repo.listed(session, PlanFact, PlanFact.patient_id == patient_id):
        resources.append(
            fhir.care_plan(
                subject, {**plan.model_dump(), "created_at": _iso(plan.created_at)}, phase
            )
        )
    for row in await repo.listed(session, SessionFact, SessionFact.patient_id == patient_id):
        resources.append(
            fhir.appointment(
                subject,
                {
                    **row.model_dump(),
                    "starts_at": _iso(row.starts_at),
                    "ends_at": _iso(row.ends_at),
                },
            )
        )
    resolved = {e.data.get("alert_id") for e in entries if e.event_type == "VitalsAlertResolved"}
    for entry in entries:
        at, d, key = _iso(entry.occurred_at), entry.data, entry.event_id
        match entry.event_type:
            case "PatientScreened":
                baseline = d["baseline"]
                resources += fhir.vital_observations(subject, key, at, baseline)
                resources.append(
                    fhir.score_observation(
                        subject, key, at, fhir.PHQ9_TOTAL, baseline["phq9_total"]
                    )
                )
                resources.append(
                    fhir.score_observation(
                        subject, key, at, fhir.PHQ9_ITEM9, baseline["phq9_item9"]
                    )
                )
                resources.append(
                    fhir.score_observation(
                        subject, key, at, fhir.GAD7_TOTAL, baseline["gad7_total"]
                    )
                )
                resources.append(
                    fhir.questionnaire_response(
                        subject,
                        key,
                        at,
                        fhir.PHQ9_PANEL,
                        [
                            (fhir.PHQ9_TOTAL, baseline["phq9_total"]),
                            (fhir.PHQ9_ITEM9, baseline["phq9_item9"]),
                        ],
                    )
                )
                resources.append(
                    fhir.questionnaire_response(
                        subject,
                        key,
                        at,
                        fhir.GAD7_PANEL,
                        [(fhir.GAD7_TOTAL, baseline["gad7_total"])],
                    )
                )
            case "OutcomeRecorded":
                code = {"PHQ-9": fhir.PHQ9_TOTAL, "GAD-7": fhir.GAD7_TOTAL}.get(d["instrument"])
                if code is not None:
                    resources.append(fhir.score_observation(subject, key, at, code, d["total"]))
            case "DoseAdministered":
                resources.append(fhir.medication_administration(subject, key, at, d))
            case "VitalsAlert":
                resources.append(
                    fhir.detected_issue(subject, key, at, d, d["alert_id"] in resolved)
                )
            case "SafetyConcernRaised":
                text = f"{d.get('rule_id') or 'safety concern'}: {d['source']} {d['value']}"
                resources.append(fhir.flag(subject, key, at, text, active=True))
            case "NotificationSent":
                resources.append(fhir.communication(subject, key, at, d))
    for reading in await repo.listed(session, Reading, Reading.patient_id == patient_id):
        resources += fhir.vital_observations(
            subject, reading.event_id, _iso(reading.recorded_at), reading.values
        )
    return fhir.bundle(patient_id, resources, _iso(utc_now()))
