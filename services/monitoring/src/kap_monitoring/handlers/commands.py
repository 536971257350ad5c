"""Use cases behind the session endpoints. Each runs in one unit of work: the state
change and its events (outbox) commit together or not at all, and a refusal (404,
409, 422) leaves nothing stored and nothing published."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping
from dataclasses import fields
from datetime import datetime
from typing import Any, Protocol, TypeVar

from sqlalchemy import select as sa_select
from sqlmodel import col, func, select

from kap_shared.auth import Principal
from kap_shared.events import DischargeCleared, DoseAdministered, VitalsRecorded, new_id
from kap_shared.events.enums import Agent, Dissociation, Route, Severity
from kap_shared.events.envelope import as_utc, utc_now
from kap_shared.events.monitoring import (
    DischargeClearedData,
    DoseAdministeredData,
    VitalsReading,
    VitalsRecordedData,
)
from kap_shared.http.errors import NotFound, RuleViolation
from kap_shared.messaging.unit_of_work import UnitOfWork

from ..adapters import store
from ..adapters.tables import (
    DISCHARGED,
    OPEN,
    Alert,
    Baseline,
    Dose,
    MonitoredSession,
    Plan,
    PredoseDecision,
    SafetyConcern,
    StabilityAssessment,
    readings_table,
)
from ..domain import discharge, dosing
from ..domain.commands import (
    AssessStability,
    DecidePredose,
    RecordDose,
    RecordVitals,
    ResolveAlert,
    ResolveConcern,
)
from ..domain.gates import Blocker
from ..domain.rules import MON_ALERT_1, MON_WINDOW_1, SPR_PRE_5, MonitoringRules
from ..domain.vitals import Reading as DomainReading
from ..domain.vitals import VitalsState, from_micros, micros
from .alerts import DISCHARGED as RESOLVED_AT_DISCHARGE
from .alerts import PREDOSE_DECISION, envelope_fields, mark_resolved, resolve_alert
from .observations import cancel_bp_check, plan_bp_check
from .vitals import (
    Incoming,
    IngestResult,
    VitalsIngest,
    WindowLike,
    window_problem,
)

Clock = Callable[[], datetime]
# What a prescriber resolves: an alert or an in-session safety concern.
Resolvable = TypeVar("Resolvable", Alert, SafetyConcern)
# A dose command's fields that the dose gates read, and those its event carries as
# given (the times are monitoring's: defaulted, or derived by the gates).
REQUEST_FIELDS = {f.name for f in fields(dosing.DoseRequest)} - {"administered_at"}
EVENT_FIELDS = (set(RecordDose.model_fields) & set(DoseAdministeredData.model_fields)) - {
    "administered_at",
    "dosing_ended_at",
}


async def locked_session(uow: UnitOfWork, session_id: str) -> MonitoredSession:
    """The session, locked for this unit of work (404 when monitoring does not know it)."""
    await store.lock_sessions(uow.session, [session_id])
    row = await uow.session.get(MonitoredSession, session_id, populate_existing=True)
    if row is None:
        raise NotFound("session", session_id)
    return row


def require_open(row: WindowLike) -> None:
    problem = window_problem(row)
    if problem is not None:
        raise RuleViolation(MON_WINDOW_1, problem)


# -- vitals ---------------------------------------------------------------------------------


async def record_vitals(
    uow: UnitOfWork,
    ingest: VitalsIngest,
    session_id: str,
    cmd: RecordVitals,
    *,
    check: Callable[[store.SessionRow], None],
    clock: Clock = utc_now,
) -> tuple[IngestResult, str, datetime]:
    """HTTP ingest: validate, evaluate and store in one transaction; VitalsRecorded goes
    to the vitals topic through the outbox (its echo is deduplicated by reading_id).
    The session is read once, as the ingest locks it: unknown (404), `check` (the
    caller's site: 403) and a closed window (409) are refused on that row before the
    reading is checked for a repeat, evaluated or stored."""
    recorded_at = cmd.recorded_at or clock()
    reading_id = cmd.reading_id or new_id()
    # The reading's values (the contract's VitalsReading fields), once for event and rules.
    values = cmd.model_dump(include=set(VitalsReading.model_fields))
    data = VitalsRecordedData(
        session_id=session_id, reading_id=reading_id, recorded_at=recorded_at, **values
    )
    event_id = uuid.uuid4()
    values["symptoms"] = tuple(cmd.symptoms)
    values["dissociation"] = cmd.dissociation.value if cmd.dissociation is not None else None
    reading = DomainReading(reading_id=reading_id, t=micros(recorded_at), **values)
    item = Incoming(reading, recorded_at, session_id, "http", str(event_id))

    def admit(sessions: Mapping[str, store.SessionRow]) -> None:
        row = sessions.get(session_id)
        if row is None:
            raise NotFound("session", session_id)
        check(row)
        require_open(row)
        # The reading's own event first: what it triggers follows it in the outbox.
        uow.publish(
            VitalsRecorded(
                **envelope_fields(row, None), event_id=event_id, occurred_at=clock(), data=data
            )
        )

    # A new reading, as a rule (its echo never reaches the ingest: vitals_batch.decode);
    # a repeat is found by the readings insert itself.
    result = await ingest.apply(uow, [item], admit=admit)
    if result.rejected:  # unknown and closed sessions were refused by `admit`: a reused id
        rejection = result.rejected[0]
        raise RuleViolation(rejection.code, rejection.message)
    if result.stored:
        await uow.commit()
        return result, reading_id, recorded_at
    # A repeated reading_id: nothing is committed (not even its event); the answer
    # describes the reading as first recorded.
    stored = await uow.session.scalar(
        sa_select(readings_table.c.recorded_at).where(readings_table.c.reading_id == reading_id)
    )
    return result, reading_id, as_utc(stored) if stored else recorded_at


# -- doses -------------------------------------------------------------------------------------


async def dose_facts(
    uow: UnitOfWork, row: MonitoredSession, administered_at: datetime
) -> dosing.DoseFacts:
    """What the dose gates need to know, read in the dose's unit of work."""
    db = uow.session
    plan = await db.get(Plan, row.plan_id)
    # The plan decides; a plan monitoring has not seen falls back to the route the
    # patient was screened for (the plan is made from it); neither: refused.
    baseline = await db.get(Baseline, row.patient_id) if plan is None else None
    route = plan.route if plan is not None else baseline.route if baseline is not None else None
    devices = await db.exec(
        select(Dose.device_number, Dose.administered_at)
        .where(Dose.session_id == row.session_id)
        .where(col(Dose.device_number).is_not(None))
    )
    bp_before = await db.exec(  # type: ignore[call-overload]
        sa_select(readings_table.c.reading_id)
        .where(readings_table.c.session_id == row.session_id)
        .where(readings_table.c.bp_systolic.is_not(None))
        .where(readings_table.c.recorded_at <= administered_at)
        .limit(1)
    )
    critical = await db.exec(
        select(Alert.alert_id, Alert.rule_id)
        .where(Alert.session_id == row.session_id)
        .where(Alert.status == OPEN)
        .where(Alert.severity == Severity.CRITICAL.value)
        .order_by(col(Alert.raised_at))
    )
    concerns = await db.exec(
        select(SafetyConcern.concern_id, SafetyConcern.rule_id)
        .where(SafetyConcern.session_id == row.session_id)
        .where(SafetyConcern.status == OPEN)
        .order_by(col(SafetyConcern.raised_at))
    )
    # SPR-ADM-3: monitoring knows earlier sessions from its own doses.
    totals = await db.exec(
        select(Dose.session_id, func.sum(Dose.dose_mg))
        .join(MonitoredSession, col(MonitoredSession.session_id) == col(Dose.session_id))
        .where(MonitoredSession.patient_id == row.patient_id)
        .where(Dose.session_id != row.session_id)
        .where(Dose.agent == Agent.ESKETAMINE.value)
        .where(col(Dose.administered_at) < administered_at)
        .group_by(col(Dose.session_id))
    )
    return dosing.DoseFacts(
        checked_in_at=as_utc(row.checked_in_at) if row.checked_in_at else None,
        plan_route=Route(route) if route is not None else None,
        session_agent=Agent(row.agent) if row.agent else None,
        devices={n: as_utc(at) for n, at in devices if n is not None},
        first_dose_at=as_utc(row.first_dose_at) if row.first_dose_at else None,
        predose_decision_pending=row.predose_decision_pending,
        predose_decision=row.predose_decision,
        bp_before_dose=bp_before.first() is not None,
        open_critical=[(a, r) for a, r in critical],
        open_concerns=[(c, r) for c, r in concerns],
        earlier_session_max_mg=max((float(t or 0) for _, t in totals), default=0.0),
    )


def refuse(found: list[Blocker]) -> None:
    """409 naming the first rule; every blocker (with what clears it) in the details."""
    if found:
        first = found[0]
        raise RuleViolation(
            first.rule_id,
            f"{first.message}. To clear: {first.clear}",
            {"blockers": [b.as_dict() for b in found]},
        )


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
    request = dosing.DoseRequest(
        **cmd.model_dump(include=REQUEST_FIELDS), administered_at=cmd.administered_at or now
    )
    administered_at = request.administered_at
    refuse(dosing.dose_blockers(request, await dose_facts(uow, row, administered_at), rules, now))
    ends_at, ends_source = dosing.dosing_end(request, rules)
    assert ends_at is not None  # KET-DIS-6 refused a dose without an end
    event = DoseAdministered(
        **envelope_fields(row, None),
        occurred_at=now,
        data=DoseAdministeredData(
            **cmd.model_dump(include=EVENT_FIELDS),
            session_id=row.session_id,
            administered_at=administered_at,
            charted_at=now,
            dosing_ended_at=ends_at if cmd.agent is Agent.KETAMINE else None,
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
        charted_at=now,
        ends_at_source=ends_source,
        concomitant_medications=(
            [c.value for c in cmd.concomitant_medications]
            if cmd.concomitant_medications is not None
            else None
        ),
        nasal_medication_used=cmd.nasal_medication_used,
        nasal_medication_at=cmd.nasal_medication_at,
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


async def open_of_session(
    uow: UnitOfWork, model: type[Resolvable], key: str, row: MonitoredSession, noun: str
) -> Resolvable:
    """The open alert or safety concern `key` of this session: 404 when there is none
    (or it is another session's), MON-ALERT-1 when it is resolved already."""
    found = await uow.session.get(model, key)
    if found is None or found.session_id != row.session_id:
        raise NotFound(noun, key)
    if found.status != OPEN:
        raise RuleViolation(MON_ALERT_1, f"{noun} {key} is already resolved")
    return found


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
    alert = await open_of_session(uow, Alert, alert_id, row, "alert")
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


async def latest_assessment(uow: UnitOfWork, session_id: str) -> StabilityAssessment | None:
    return (
        await uow.session.exec(
            select(StabilityAssessment)
            .where(StabilityAssessment.session_id == session_id)
            .order_by(col(StabilityAssessment.assessed_at).desc())
            .limit(1)
        )
    ).first()


async def discharge_facts(uow: UnitOfWork, row: MonitoredSession) -> discharge.DischargeFacts:
    critical = await uow.session.exec(
        select(Alert.rule_id)
        .where(Alert.session_id == row.session_id)
        .where(Alert.status == OPEN)
        .where(Alert.severity == Severity.CRITICAL.value)
    )
    return facts_of(row, list(critical), await latest_assessment(uow, row.session_id))


class SessionFacts(Protocol):
    """The session columns the discharge criteria read (the table model, or a Core row
    of its columns: `views` reads sessions as rows)."""

    rule_state: dict[str, Any]
    route: str | None
    first_dose_at: datetime | None
    dosing_end_at: datetime | None
    baseline_bp_systolic: int | None
    baseline_bp_diastolic: int | None
    baseline_heart_rate: int | None


def facts_of(
    row: SessionFacts, open_critical: list[str], signed: StabilityAssessment | None
) -> discharge.DischargeFacts:
    """The discharge criteria's facts from the session row, the rule ids of its open
    critical alerts and its latest signed assessment (no I/O: a board loads those for
    many sessions at once)."""
    state = VitalsState.from_json(row.rule_state)
    baseline_bp = (
        (row.baseline_bp_systolic, row.baseline_bp_diastolic)
        if row.baseline_bp_systolic is not None and row.baseline_bp_diastolic is not None
        else None
    )
    assessment = (
        discharge.Assessment(
            **signed.model_dump(include=set(discharge.Assessment.model_fields) - {"assessed_at"}),
            assessed_at=as_utc(signed.assessed_at),
        )
        if signed is not None
        else None
    )
    return discharge.DischargeFacts(
        route=Route(row.route) if row.route else None,
        first_dose_at=as_utc(row.first_dose_at) if row.first_dose_at else None,
        dosing_end_at=as_utc(row.dosing_end_at) if row.dosing_end_at else None,
        open_critical=open_critical,
        latest=state.latest,
        latest_at={metric: from_micros(t) for metric, t in state.last_t.items()},
        dissociation=Dissociation(state.dissociation) if state.dissociation else None,
        dissociation_at=(
            from_micros(state.dissociation_t) if state.dissociation_t is not None else None
        ),
        cadss_total=state.cadss_total,
        baseline_bp=baseline_bp,
        baseline_hr=row.baseline_heart_rate,
        assessment=assessment,
    )


async def assess_stability(
    uow: UnitOfWork,
    row: MonitoredSession,
    cmd: AssessStability,
    rules: MonitoringRules,
    by: Principal,
    *,
    clock: Clock = utc_now,
) -> StabilityAssessment:
    """A clinician documents the stability assessment that signs the discharge. Only a
    role the site allows may sign (default: prescriber; the REMS asks for one onsite)."""
    require_open(row)
    if by.role not in rules.discharge_signer_roles:
        route = Route(row.route) if row.route else None
        signers = ", ".join(sorted(r.value for r in rules.discharge_signer_roles))
        raise RuleViolation(
            discharge.signer_rule(route),
            f"a {by.role.value} cannot sign the stability assessment at this site. "
            f"To clear: a {signers} documents it",
            {"signer_roles": sorted(r.value for r in rules.discharge_signer_roles)},
        )
    assessment = StabilityAssessment(
        assessment_id=new_id(),
        session_id=row.session_id,
        assessed_by=by.sub,
        role=by.role.value,
        assessed_at=clock(),
        **cmd.model_dump(),
    )
    uow.session.add(assessment)
    await uow.commit()
    return assessment


async def discharge_session(
    uow: UnitOfWork,
    row: MonitoredSession,
    rules: MonitoringRules,
    by: Principal,
    *,
    clock: Clock = utc_now,
) -> MonitoredSession:
    """Discharge when every criterion holds: 409 naming the first failing rule (all of
    them, each with what clears it, in `details`) otherwise. Emits DischargeCleared
    signed by the assessment's author and closes the window."""
    require_open(row)
    now = clock()
    facts = await discharge_facts(uow, row)
    refuse(discharge.blockers(facts, rules, now))
    assert facts.first_dose_at is not None  # no MON-DIS-1 blocker
    assert facts.assessment is not None  # no SPR-DIS-1 / MON-DIS-3 blocker
    observed = round(discharge.observed_minutes(facts.first_dose_at, now), 1)
    row.status = DISCHARGED
    row.discharged_at = now
    row.discharged_by = by.sub
    row.signed_by = facts.assessment.assessed_by
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
                signed_by=facts.assessment.assessed_by,
            ),
        )
    )
    await uow.commit()
    return row


# -- in-session safety concerns (MBC-1) --------------------------------------------------------


async def resolve_concern(
    uow: UnitOfWork,
    row: MonitoredSession,
    concern_id: str,
    cmd: ResolveConcern,
    prescriber: Principal,
    *,
    clock: Clock = utc_now,
) -> SafetyConcern:
    """A prescriber's coded decision on a safety concern raised in this session; it
    lifts the dosing hold of the session (scheduling keeps its own hold)."""
    concern = await open_of_session(uow, SafetyConcern, concern_id, row, "safety concern")
    mark_resolved(
        uow, concern, now=clock(), by=prescriber.sub, resolution=cmd.decision, note=cmd.note
    )
    await uow.commit()
    return concern
