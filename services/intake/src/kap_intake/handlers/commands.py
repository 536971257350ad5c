"""Use cases. Each runs in one unit of work: the state change and its events
(via the outbox) commit together or not at all."""

from __future__ import annotations

from datetime import date

from kap_shared.auth import Principal
from kap_shared.clinical.instruments import Score, ScoringError, score
from kap_shared.events import ConsentRecorded, PatientReferred, PatientScreened, new_id
from kap_shared.events.enums import Instrument, Route, ScreeningOutcome
from kap_shared.events.envelope import envelope_fields
from kap_shared.events.intake import (
    Baseline,
    ConsentRecordedData,
    Contraindication,
    PatientReferredData,
    PatientScreenedData,
)
from kap_shared.http.errors import InvalidField, NotFound, RuleViolation
from kap_shared.messaging.unit_of_work import UnitOfWork

from ..adapters import tables
from ..domain.commands import RecordConsent, RegisterPatient, ReviewScreening, ScreenPatient
from ..domain.model import age_on
from ..domain.rules import CONTRAINDICATIONS, ScreeningFacts, ScreeningRules, decide

PRODUCER = "intake"


async def register_patient(uow: UnitOfWork, cmd: RegisterPatient) -> tables.Patient:
    patient_id = new_id()
    patient = tables.Patient(
        patient_id=patient_id,
        site_id=cmd.site_id,
        given_name=cmd.given_name,
        family_name=cmd.family_name,
        date_of_birth=cmd.date_of_birth,
        phone=cmd.contact.phone,
        email=str(cmd.contact.email) if cmd.contact.email else None,
        indications=list(cmd.indications),
        referral_source=cmd.referral_source,
        # The care episode starts with the referral; every later event follows it.
        correlation_id=new_id(),
    )
    uow.session.add(patient)
    uow.publish(
        PatientReferred(
            **envelope_fields(patient, producer=PRODUCER),
            data=PatientReferredData(
                indications=patient.indications, referral_source=cmd.referral_source
            ),
        )
    )
    await uow.commit()
    return patient


async def get_patient(uow: UnitOfWork, patient_id: str) -> tables.Patient:
    patient = await uow.session.get(tables.Patient, patient_id)
    if patient is None:
        raise NotFound("patient", patient_id)
    return patient


def _score(instrument: Instrument, items: list[int | None] | list[int], field: str) -> Score:
    try:
        return score(instrument, list(items), field)
    except ScoringError as exc:
        raise InvalidField(exc.field, exc.message) from exc


async def screen_patient(
    uow: UnitOfWork,
    patient: tables.Patient,
    cmd: ScreenPatient,
    rules: ScreeningRules,
    screened_by: Principal,
    today: date | None = None,
) -> tables.Screening:
    phq9 = _score(Instrument.PHQ9, cmd.phq9, "phq9")
    gad7 = _score(Instrument.GAD7, cmd.gad7, "gad7")
    pcl5 = _score(Instrument.PCL5, cmd.pcl5, "pcl5") if cmd.pcl5 is not None else None
    item9 = cmd.phq9[8] or 0
    decision = decide(
        ScreeningFacts(
            age_years=age_on(patient.date_of_birth, today or date.today()),
            contraindications=cmd.contraindications,
            phq9_item9=item9,
            bp_systolic=cmd.vitals.bp_systolic,
            bp_diastolic=cmd.vitals.bp_diastolic,
            gad7_total=gad7.total,
            pcl5_items=list(cmd.pcl5) if cmd.pcl5 is not None else None,
        ),
        rules,
    )
    baseline = Baseline(
        phq9_total=phq9.total,
        phq9_item9=item9,
        gad7_total=gad7.total,
        pcl5_total=pcl5.total if pcl5 else None,
        bp_systolic=cmd.vitals.bp_systolic,
        bp_diastolic=cmd.vitals.bp_diastolic,
        heart_rate=cmd.vitals.heart_rate,
    )
    contraindications = [
        Contraindication.model_validate({"code": code, "class": CONTRAINDICATIONS[code]})
        for code in cmd.contraindications
    ]
    screening = tables.Screening(
        screening_id=new_id(),
        patient_id=patient.patient_id,
        route=cmd.route.value,
        outcome=decision.outcome.value,
        reasons=list(decision.reasons),
        contraindications=[c.model_dump(mode="json", by_alias=True) for c in contraindications],
        baseline=baseline.model_dump(mode="json"),
        scores={
            s.instrument.value: {"total": s.total, "band": s.band, "imputed_items": s.imputed_items}
            for s in (phq9, gad7, pcl5)
            if s is not None
        },
        screened_by=screened_by.sub,
    )
    uow.session.add(screening)
    uow.publish(_screened_event(patient, screening, patient.indications))
    await uow.commit()
    return screening


def _screened_event(
    patient: tables.Patient, screening: tables.Screening, indications: list[str]
) -> PatientScreened:
    return PatientScreened(
        **envelope_fields(patient, producer=PRODUCER),
        data=PatientScreenedData(
            screening_id=screening.screening_id,
            outcome=ScreeningOutcome(screening.outcome),
            route=Route(screening.route),
            indications=indications,
            contraindications=[
                Contraindication.model_validate(c) for c in screening.contraindications
            ],
            reasons=screening.reasons,
            baseline=Baseline.model_validate(screening.baseline),
            reviewed_by=screening.reviewed_by,
            review_reason=screening.review_reason,
        ),
    )


async def review_screening(
    uow: UnitOfWork,
    patient: tables.Patient,
    screening_id: str,
    cmd: ReviewScreening,
    reviewer: Principal,
) -> tables.Screening:
    screening = await uow.session.get(tables.Screening, screening_id)
    if screening is None or screening.patient_id != patient.patient_id:
        raise NotFound("screening", screening_id)
    if screening.review_decision is not None or screening.outcome != ScreeningOutcome.NEEDS_REVIEW:
        raise RuleViolation(
            "SCR-REVIEW-1",
            "only an undecided needs_review screening can be reviewed "
            f"(outcome is {screening.outcome})",
        )
    screening.outcome = (
        ScreeningOutcome.ELIGIBLE if cmd.decision == "approve" else ScreeningOutcome.INELIGIBLE
    ).value
    screening.review_decision = cmd.decision
    screening.reviewed_by = reviewer.sub
    screening.review_reason = cmd.reason
    screening.review_note = cmd.note
    uow.session.add(screening)
    uow.publish(_screened_event(patient, screening, patient.indications))
    await uow.commit()
    return screening


async def record_consent(
    uow: UnitOfWork, patient: tables.Patient, cmd: RecordConsent, recorded_by: Principal
) -> tables.Consent:
    consent = tables.Consent(
        consent_id=new_id(),
        patient_id=patient.patient_id,
        scope=cmd.scope.value,
        granted=cmd.granted,
        recorded_by=recorded_by.sub,
    )
    uow.session.add(consent)
    uow.publish(
        ConsentRecorded(
            **envelope_fields(patient, producer=PRODUCER),
            data=ConsentRecordedData(
                consent_id=consent.consent_id, scope=cmd.scope, granted=cmd.granted
            ),
        )
    )
    await uow.commit()
    return consent
