"""Use cases behind the session endpoints. Each runs in one unit of work: the state
change and its events (outbox) commit together or not at all, and a refusal (404,
409, 422) leaves nothing stored and nothing published."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from sqlmodel import col, select

from kap_shared.auth import Principal
from kap_shared.events import DischargeCleared, DoseAdministered, VitalsRecorded, new_id
from kap_shared.events.enums import Route, Severity
from kap_shared.events.envelope import as_utc, utc_now
from kap_shared.events.monitoring import (
    DischargeClearedData,
    DoseAdministeredData,
    VitalsRecordedData,
)
from kap_shared.http.errors import NotFound, RuleViolation
from kap_shared.messaging.unit_of_work import UnitOfWork

from ..adapters import store
from ..adapters.tables import (
    DISCHARGED,
    OPEN,
    Alert,
    Dose,
    MonitoredSession,
    PredoseDecision,
    Reading,
)
from ..domain import discharge
from ..domain.commands import DecidePredose, RecordDose, RecordVitals, ResolveAlert
from ..domain.rules import (
    MON_ALERT_1,
    MON_DOSE_1,
    MON_WINDOW_1,
    SPR_PRE_4,
    SPR_PRE_5,
    MonitoringRules,
)
from ..domain.vitals import Group, VitalsState, from_micros, micros
from ..domain.vitals import Reading as DomainReading
from .alerts import DISCHARGED as RESOLVED_AT_DISCHARGE
from .alerts import PREDOSE_DECISION, envelope_fields, resolve_alert
from .observations import cancel_bp_check, plan_bp_check
from .vitals import NOT_FOUND, Incoming, IngestResult, VitalsIngest, window_problem

Clock = Callable[[], datetime]


async def locked_session(uow: UnitOfWork, session_id: str) -> MonitoredSession:
    """The session, locked for this unit of work (404 when monitoring does not know it)."""
    await store.lock_sessions(uow.session, [session_id])
    row = await uow.session.get(MonitoredSession, session_id, populate_existing=True)
    if row is None:
        raise NotFound("session", session_id)
    return row


def require_open(row: MonitoredSession) -> None:
    problem = window_problem(row)
    if problem is not None:
        raise RuleViolation(MON_WINDOW_1, problem)


# -- vitals ---------------------------------------------------------------------------------


async def record_vitals(
    uow: UnitOfWork,
    ingest: VitalsIngest,
    row: MonitoredSession,
    cmd: RecordVitals,
    *,
    clock: Clock = utc_now,
) -> tuple[IngestResult, str, datetime]:
    """HTTP ingest: validate, evaluate and store in one transaction; VitalsRecorded goes
    to the vitals topic through the outbox (its echo is deduplicated by reading_id)."""
    recorded_at = cmd.recorded_at or clock()
    reading_id = cmd.reading_id or new_id()
    event = VitalsRecorded(
        **envelope_fields(row, None),
        occurred_at=clock(),
        data=VitalsRecordedData(
            session_id=row.session_id,
            reading_id=reading_id,
            recorded_at=recorded_at,
            bp_systolic=cmd.bp_systolic,
            bp_diastolic=cmd.bp_diastolic,
            heart_rate=cmd.heart_rate,
            spo2=cmd.spo2,
            respiratory_rate=cmd.respiratory_rate,
            sedation_moaas=cmd.sedation_moaas,
            symptoms=list(cmd.symptoms),
        ),
    )
    reading = DomainReading(
        reading_id=reading_id,
        t=micros(recorded_at),
        bp_systolic=cmd.bp_systolic,
        bp_diastolic=cmd.bp_diastolic,
        heart_rate=cmd.heart_rate,
        spo2=cmd.spo2,
        respiratory_rate=cmd.respiratory_rate,
        sedation_moaas=cmd.sedation_moaas,
        symptoms=tuple(cmd.symptoms),
    )
    item = Incoming(reading, recorded_at, row.session_id, "http", str(event.event_id))
    # The reading's own event first: what it triggers follows it in the outbox.
    uow.publish(event)
    result = await ingest.apply(uow, [item])
    if result.rejected:
        rejection = result.rejected[0]
        if rejection.code == NOT_FOUND:
            raise NotFound("session", row.session_id)
        raise RuleViolation(rejection.code, rejection.message)
    if result.stored:
        await uow.commit()
        return result, reading_id, recorded_at
    # A repeated reading_id: nothing is committed (not even its event); the answer
    # describes the reading as first recorded.
    stored = await uow.session.get(Reading, reading_id)
    return result, reading_id, as_utc(stored.recorded_at) if stored else recorded_at


# -- doses -------------------------------------------------------------------------------------


async def record_dose(
    uow: UnitOfWork,
    row: MonitoredSession,
    cmd: RecordDose,
    rules: MonitoringRules,
    recorded_by: Principal,
    *,
    clock: Clock = utc_now,
) -> Dose:
    require_open(row)
    now = clock()
    administered_at = cmd.administered_at or now
    if row.agent is not None and row.agent != cmd.agent.value:
        raise RuleViolation(
            MON_DOSE_1, f"this session's doses are {row.agent}; a session has one agent"
        )
    if cmd.device_number is not None:
        taken = await uow.session.exec(
            select(Dose.dose_id)
            .where(Dose.session_id == row.session_id)
            .where(Dose.device_number == cmd.device_number)
        )
        if taken.first() is not None:
            raise RuleViolation(
                MON_DOSE_1, f"esketamine device {cmd.device_number} is already recorded"
            )
    if row.predose_decision_pending:
        raise RuleViolation(
            SPR_PRE_5,
            "pre-dose blood pressure is above the limit: a prescriber must document "
            "proceed or defer before dosing",
        )
    if row.predose_decision == "defer" and row.first_dose_at is None:
        raise RuleViolation(SPR_PRE_5, "the prescriber deferred dosing for this session")
    if rules.predose_bp_required and row.first_dose_at is None:
        before = await uow.session.exec(
            select(Reading.reading_id)
            .where(Reading.session_id == row.session_id)
            .where(col(Reading.bp_systolic).is_not(None))
            .where(col(Reading.recorded_at) <= administered_at)
            .limit(1)
        )
        if before.first() is None:
            raise RuleViolation(SPR_PRE_4, "record a blood pressure before the first dose")
    ends_at = cmd.ends_at or administered_at
    event = DoseAdministered(
        **envelope_fields(row, None),
        occurred_at=now,
        data=DoseAdministeredData(
            session_id=row.session_id,
            administered_at=administered_at,
            route=cmd.route,
            agent=cmd.agent,
            dose_mg=cmd.dose_mg,
            device_number=cmd.device_number,
        ),
    )
    dose = Dose(
        dose_id=new_id(),
        session_id=row.session_id,
        agent=cmd.agent.value,
        route=cmd.route.value,
        dose_mg=cmd.dose_mg,
        device_number=cmd.device_number,
        administered_at=administered_at,
        ends_at=ends_at,
        recorded_by=recorded_by.sub,
        event_id=str(event.event_id),
    )
    uow.session.add(dose)
    first_changed = row.first_dose_at is None or administered_at < as_utc(row.first_dose_at)
    row.agent, row.route = cmd.agent.value, cmd.route.value
    if first_changed:
        row.first_dose_at = administered_at
    if row.dosing_end_at is None or ends_at > as_utc(row.dosing_end_at):
        row.dosing_end_at = ends_at
    row.updated_at = now
    uow.session.add(row)
    if first_changed:
        await plan_bp_check(uow, row, rules, now)
    uow.publish(event)
    await uow.commit()
    return dose


# -- SPR-PRE-5 decision -------------------------------------------------------------------------


async def decide_predose(
    uow: UnitOfWork,
    row: MonitoredSession,
    cmd: DecidePredose,
    prescriber: Principal,
    *,
    clock: Clock = utc_now,
) -> PredoseDecision:
    """Record the prescriber's decision on an elevated pre-dose BP. `proceed` lets dosing
    start; `defer` keeps doses refused. Allowed while a decision is awaited or after a
    `defer` (a later recheck may change it), not once dosing has started."""
    require_open(row)
    if row.first_dose_at is not None:
        raise RuleViolation(SPR_PRE_5, "dosing has started: the pre-dose decision is closed")
    if not row.predose_decision_pending and row.predose_decision != "defer":
        raise RuleViolation(SPR_PRE_5, "no elevated pre-dose blood pressure awaits a decision")
    now = clock()
    decision = PredoseDecision(
        decision_id=new_id(),
        session_id=row.session_id,
        decision=cmd.decision,
        reason=cmd.reason,
        note=cmd.note,
        decided_by=prescriber.sub,
        decided_at=now,
    )
    uow.session.add(decision)
    row.predose_decision_pending = False
    row.predose_decision = cmd.decision
    row.updated_at = now
    uow.session.add(row)
    alert = (
        await uow.session.exec(
            select(Alert)
            .where(Alert.session_id == row.session_id)
            .where(Alert.rule_id == SPR_PRE_5)
            .where(Alert.status == OPEN)
        )
    ).first()
    if alert is not None:
        resolve_alert(uow, row, alert, now=now, by=prescriber.sub, resolution=PREDOSE_DECISION)
    await uow.commit()
    return decision


# -- alerts ---------------------------------------------------------------------------------------


async def resolve_by_prescriber(
    uow: UnitOfWork,
    row: MonitoredSession,
    alert_id: str,
    cmd: ResolveAlert,
    prescriber: Principal,
    *,
    clock: Clock = utc_now,
) -> Alert:
    """A prescriber closes an alert after assessing the patient (artifact, treated,
    transferred...). The episode itself goes on until the values are back in range,
    so the same episode does not raise the alert again."""
    alert = await uow.session.get(Alert, alert_id)
    if alert is None or alert.session_id != row.session_id:
        raise NotFound("alert", alert_id)
    if alert.status != OPEN:
        raise RuleViolation(MON_ALERT_1, f"alert {alert_id} is already resolved")
    resolve_alert(
        uow,
        row,
        alert,
        now=clock(),
        by=prescriber.sub,
        resolution=f"prescriber:{cmd.reason}",
        note=cmd.note,
    )
    await uow.commit()
    return alert


# -- discharge -------------------------------------------------------------------------------------


async def discharge_facts(uow: UnitOfWork, row: MonitoredSession) -> discharge.DischargeFacts:
    critical = await uow.session.exec(
        select(Alert.rule_id)
        .where(Alert.session_id == row.session_id)
        .where(Alert.status == OPEN)
        .where(Alert.severity == Severity.CRITICAL.value)
    )
    state = VitalsState.from_json(row.rule_state)
    bp_t = state.newest(Group.BP)
    baseline_bp = (
        (row.baseline_bp_systolic, row.baseline_bp_diastolic)
        if row.baseline_bp_systolic is not None and row.baseline_bp_diastolic is not None
        else None
    )
    return discharge.DischargeFacts(
        route=Route(row.route) if row.route else None,
        first_dose_at=as_utc(row.first_dose_at) if row.first_dose_at else None,
        dosing_end_at=as_utc(row.dosing_end_at) if row.dosing_end_at else None,
        open_critical=list(critical),
        latest=state.latest,
        latest_bp_at=from_micros(bp_t) if bp_t is not None else None,
        baseline_bp=baseline_bp,
        baseline_hr=row.baseline_heart_rate,
    )


async def discharge_session(
    uow: UnitOfWork,
    row: MonitoredSession,
    rules: MonitoringRules,
    by: Principal,
    *,
    clock: Clock = utc_now,
) -> MonitoredSession:
    """Discharge when every criterion holds: 409 naming the first failing rule (all of
    them in `details`) otherwise. Emits DischargeCleared and closes the window."""
    require_open(row)
    now = clock()
    facts = await discharge_facts(uow, row)
    failing = discharge.blockers(facts, rules, now)
    if failing:
        first = failing[0]
        raise RuleViolation(
            first.rule_id, first.message, {"blockers": [b.as_dict() for b in failing]}
        )
    assert facts.first_dose_at is not None  # no MON-DIS-1 blocker
    observed = round(discharge.observed_minutes(facts.first_dose_at, now), 1)
    row.status = DISCHARGED
    row.discharged_at = now
    row.discharged_by = by.sub
    row.observed_minutes = observed
    row.updated_at = now
    uow.session.add(row)
    await cancel_bp_check(uow, row.session_id)
    # Warnings still open (critical ones block discharge) close with the window.
    for alert in await store.open_alerts(uow.session, [row.session_id]):
        resolve_alert(uow, row, alert, now=now, by=by.sub, resolution=RESOLVED_AT_DISCHARGE)
    uow.publish(
        DischargeCleared(
            **envelope_fields(row, None),
            occurred_at=now,
            data=DischargeClearedData(
                session_id=row.session_id,
                first_dose_at=facts.first_dose_at,
                cleared_at=now,
                observed_minutes=observed,
            ),
        )
    )
    await uow.commit()
    return row
