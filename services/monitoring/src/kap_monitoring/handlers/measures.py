"""Outcome measures: score, compare with the screening baseline (MBC-3), name the
follow-ups the result asks for (MBC-2, MBC-4, GAD-7 referral, PCL-5 provisional
diagnosis) and raise a safety concern on PHQ-9 item 9 (MBC-1), in one unit of work."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar

from sqlmodel import col, select
from sqlmodel.sql.expression import SelectOfScalar

from kap_shared.auth import Principal
from kap_shared.clinical.instruments import ScoringError, score
from kap_shared.events import OutcomeRecorded, SafetyConcernRaised, new_id
from kap_shared.events.enums import Instrument, Severity
from kap_shared.events.envelope import envelope_fields, utc_now
from kap_shared.events.monitoring import OutcomeRecordedData, SafetyConcernRaisedData
from kap_shared.http.errors import InvalidField, NotFound
from kap_shared.messaging.unit_of_work import UnitOfWork

from ..adapters.tables import Baseline, Measure, MonitoredSession, SafetyConcern
from ..domain.commands import RecordMeasure
from ..domain.outcomes import Outcome, follow_ups, outcome
from ..domain.rules import MBC_1, MonitoringRules
from .alerts import PRODUCER

# MBC-1's source, as the contract names it.
PHQ9_ITEM9 = "PHQ-9 item 9"

_Row = TypeVar("_Row")


@dataclass(frozen=True)
class Patient:
    """What monitoring knows of a patient: where they are treated and their episode."""

    patient_id: str
    site_id: str
    correlation_id: str
    baseline: Baseline | None


async def _newest(uow: UnitOfWork, query: SelectOfScalar[_Row], by: Any) -> _Row | None:
    """The first of `query`'s rows, the newest by `by` first; None when there is none."""
    return (await uow.session.exec(query.order_by(col(by).desc()).limit(1))).first()


async def find_patient(uow: UnitOfWork, patient_id: str) -> Patient:
    """Known from a screening baseline or from a session; 404 otherwise."""
    baseline = await uow.session.get(Baseline, patient_id)
    if baseline is not None:
        return Patient(patient_id, baseline.site_id, baseline.correlation_id, baseline)
    of_patient = select(MonitoredSession).where(MonitoredSession.patient_id == patient_id)
    latest = await _newest(uow, of_patient, MonitoredSession.starts_at)
    if latest is None:
        raise NotFound("patient", patient_id)
    return Patient(patient_id, latest.site_id, latest.correlation_id, None)


def _baseline_total(baseline: Baseline | None, instrument: Instrument) -> int | None:
    if baseline is None:
        return None
    if instrument is Instrument.PHQ9:
        return baseline.phq9_total
    if instrument is Instrument.GAD7:
        return baseline.gad7_total
    return baseline.pcl5_total


@dataclass(frozen=True)
class MeasureResult:
    measure: Measure
    outcome: Outcome
    safety_concern: Severity | None


async def record_measure(
    uow: UnitOfWork,
    patient: Patient,
    cmd: RecordMeasure,
    rules: MonitoringRules,
    recorded_by: Principal,
    *,
    clock: Callable[[], datetime] = utc_now,
) -> MeasureResult:
    try:
        scored = score(cmd.instrument, list(cmd.items), "items")
    except ScoringError as exc:
        raise InvalidField(exc.field, exc.message) from exc
    if cmd.session_id is not None:
        # A measure taken in a session can hold that session's doses (MBC-1): it must
        # be this patient's session.
        session = await uow.session.get(MonitoredSession, cmd.session_id)
        if session is None or session.patient_id != patient.patient_id:
            raise InvalidField("session_id", "not a session of this patient")
    baseline_total = _baseline_total(patient.baseline, cmd.instrument)
    result = outcome(scored, baseline_total, rules)
    totals = (
        select(Measure.total)
        .where(Measure.patient_id == patient.patient_id)
        .where(Measure.instrument == cmd.instrument.value)
    )
    previous = await _newest(uow, totals, Measure.administered_at)
    # MBC-2 / MBC-4 compare with the previous score (the baseline before any follow-up).
    follow_up = follow_ups(
        cmd.instrument,
        result.total,
        list(cmd.items),
        previous if previous is not None else baseline_total,
        rules,
    )
    now = clock()
    envelope = envelope_fields(
        patient, producer=PRODUCER, correlation_fallback=patient.patient_id, occurred_at=now
    )
    recorded = OutcomeRecorded(
        **envelope, data=OutcomeRecordedData(**result.model_dump(), follow_up=follow_up)
    )
    measure = Measure(
        measure_id=new_id(),
        patient_id=patient.patient_id,
        site_id=patient.site_id,
        session_id=cmd.session_id,
        items=list(cmd.items),
        **result.model_dump(mode="json"),  # the instrument stored as its code
        follow_up=follow_up,
        recorded_by=recorded_by.sub,
        administered_at=cmd.administered_at or now,
        event_id=str(recorded.event_id),
    )
    uow.session.add(measure)
    uow.publish(recorded)
    concern: Severity | None = None
    if cmd.instrument is Instrument.PHQ9:
        item9 = cmd.items[8]
        assert item9 is not None  # scoring refuses an unanswered item 9
        concern = rules.mbc1_severity(item9)
        if concern is not None:
            # MBC-1: whatever the total. Caused by the measure, so the chain is followable.
            raised = SafetyConcernRaised(
                **{**envelope, "causation_id": str(recorded.event_id)},
                data=SafetyConcernRaisedData(
                    source=PHQ9_ITEM9, value=item9, severity=concern, rule_id=MBC_1
                ),
            )
            # Raised during a session: that session's doses are held until a prescriber
            # resolves it (POST /sessions/{id}/safety-concerns/{concern_id}/resolve).
            uow.session.add(
                SafetyConcern(
                    concern_id=new_id(),
                    patient_id=patient.patient_id,
                    session_id=cmd.session_id,
                    rule_id=MBC_1,
                    source=PHQ9_ITEM9,
                    value=item9,
                    severity=concern.value,
                    raised_at=now,
                    event_id=str(raised.event_id),
                )
            )
            uow.publish(raised)
    await uow.commit()
    return MeasureResult(measure, result, concern)
