"""HTTP API (CONTRACT section 4). Thin: authorize, translate, call a use case.

Roles: nurses and prescribers record doses and discharge; devices, nurses and
prescribers post vitals; only prescribers decide an elevated pre-dose BP
(SPR-PRE-5) or resolve an alert by hand; every clinical role may read a session;
prescribers, nurses, therapists and coordinators record outcome measures. Every
request must also be for a session or patient of one of the caller's sites.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request, Response
from pydantic import BaseModel
from sqlmodel import col, select

from kap_shared.auth import Principal, ensure_site, require_roles
from kap_shared.events.enums import Role
from kap_shared.events.envelope import utc_now
from kap_shared.http.errors import NotFound
from kap_shared.http.openapi import error_responses
from kap_shared.messaging.unit_of_work import UnitOfWork
from kap_shared.service.runtime import ServiceRuntime

from ..adapters import store
from ..adapters.tables import CHECKED_IN, Alert, Dose, MonitoredSession, PredoseDecision
from ..config import MonitoringSettings
from ..domain import discharge
from ..domain.commands import (
    DecidePredose,
    RecordDose,
    RecordMeasure,
    RecordVitals,
    ResolveAlert,
)
from ..domain.rules import MonitoringRules
from ..domain.vitals import GROUP_METRICS, VitalsState, from_micros
from ..handlers import commands, measures
from ..handlers.vitals import VitalsIngest

router = APIRouter(tags=["monitoring"])

Reader = Annotated[
    Principal,
    Depends(
        require_roles(Role.PRESCRIBER, Role.NURSE, Role.THERAPIST, Role.COORDINATOR, Role.ADMIN)
    ),
]
Dosing = Annotated[Principal, Depends(require_roles(Role.NURSE, Role.PRESCRIBER))]
VitalsWriter = Annotated[
    Principal, Depends(require_roles(Role.NURSE, Role.PRESCRIBER, Role.DEVICE))
]
Prescriber = Annotated[Principal, Depends(require_roles(Role.PRESCRIBER))]
Rater = Annotated[
    Principal,
    Depends(require_roles(Role.PRESCRIBER, Role.NURSE, Role.THERAPIST, Role.COORDINATOR)),
]


def _runtime(request: Request) -> ServiceRuntime:
    runtime: ServiceRuntime = request.app.state.runtime
    return runtime


def _uow(request: Request) -> UnitOfWork:
    return _runtime(request).unit_of_work()


Uow = Annotated[UnitOfWork, Depends(_uow)]


def _rules(request: Request, site_id: str) -> MonitoringRules:
    settings: MonitoringSettings = _runtime(request).settings  # type: ignore[assignment]
    return settings.monitoring_rules.for_site(site_id)


def _ingest(request: Request) -> VitalsIngest:
    ingest: VitalsIngest = request.app.state.ingest
    return ingest


async def _session_for(uow: UnitOfWork, session_id: str, principal: Principal) -> MonitoredSession:
    row = await commands.locked_session(uow, session_id)
    ensure_site(principal, row.site_id)
    return row


# -- views ------------------------------------------------------------------------------


class AlertView(BaseModel):
    alert_id: str
    session_id: str
    rule_id: str
    severity: str
    metric: str
    value: float
    threshold: float
    message: str
    status: str
    raised_at: datetime
    triggered_at: datetime
    episode_end_at: datetime | None
    resolved_at: datetime | None
    resolved_by: str | None
    resolution: str | None


def _alert(alert: Alert) -> AlertView:
    return AlertView(**alert.model_dump(exclude={"resolution_note"}))


class ObservationView(BaseModel):
    kind: str
    due_at: datetime


class VitalsResult(BaseModel):
    reading_id: str
    session_id: str
    recorded_at: datetime
    # True when this reading_id was already recorded: nothing happened a second time.
    duplicate: bool
    alerts: list[AlertView]
    resolved_alert_ids: list[str]
    observations: list[ObservationView]


class DoseView(BaseModel):
    dose_id: str
    session_id: str
    agent: str
    route: str
    dose_mg: float
    device_number: int | None
    administered_at: datetime
    ends_at: datetime
    recorded_by: str


class DecisionView(BaseModel):
    decision_id: str
    session_id: str
    decision: str
    reason: str
    decided_by: str
    decided_at: datetime


class DischargeView(BaseModel):
    session_id: str
    status: str
    first_dose_at: datetime | None
    cleared_at: datetime | None
    observed_minutes: float | None


class LatestValue(BaseModel):
    value: float
    recorded_at: datetime


class DischargeReadiness(BaseModel):
    allowed: bool
    blockers: list[dict[str, Any]]


class SessionView(BaseModel):
    session_id: str
    patient_id: str
    site_id: str
    phase: str
    status: str
    starts_at: datetime
    ends_at: datetime
    checked_in_at: datetime | None
    agent: str | None
    route: str | None
    first_dose_at: datetime | None
    dosing_end_at: datetime | None
    predose_decision_pending: bool
    predose_decision: str | None
    bp_check_done: bool
    reading_count: int
    latest: dict[str, LatestValue]
    doses: list[DoseView]
    decisions: list[DecisionView]
    open_alerts: list[AlertView]
    discharge: DischargeReadiness
    discharged_at: datetime | None
    observed_minutes: float | None


class MeasureView(BaseModel):
    measure_id: str
    patient_id: str
    instrument: str
    total: int
    band: str
    baseline_total: int | None
    change_pct: float | None
    response: bool
    remission: bool
    # MBC-1: severity of the SafetyConcernRaised this measure caused, if any.
    safety_concern: str | None


# -- endpoints ---------------------------------------------------------------------------


@router.get(
    "/sessions/{session_id}",
    responses=error_responses(404),
    response_model=SessionView,
    summary="A monitoring window",
)
async def get_session(
    session_id: str, principal: Reader, uow: Uow, request: Request
) -> SessionView:
    async with uow:
        row = await uow.session.get(MonitoredSession, session_id)
        if row is None:
            raise NotFound("session", session_id)
        ensure_site(principal, row.site_id)
        doses = await uow.session.exec(
            select(Dose).where(Dose.session_id == session_id).order_by(col(Dose.administered_at))
        )
        decisions = await uow.session.exec(
            select(PredoseDecision)
            .where(PredoseDecision.session_id == session_id)
            .order_by(col(PredoseDecision.decided_at))
        )
        open_alerts = await store.open_alerts(uow.session, [session_id])
        blockers = (
            discharge.blockers(
                await commands.discharge_facts(uow, row),
                _rules(request, row.site_id),
                utc_now(),
            )
            if row.status == CHECKED_IN
            else []
        )
        state = VitalsState.from_json(row.rule_state)
        latest = {
            metric: LatestValue(
                value=state.latest[metric], recorded_at=from_micros(state.last_t[metric])
            )
            for metrics in GROUP_METRICS.values()
            for metric in metrics
            if metric in state.latest
        }
        return SessionView(
            **row.model_dump(exclude={"rule_state", "version", "updated_at"}),
            latest=latest,
            doses=[DoseView(**d.model_dump()) for d in doses],
            decisions=[DecisionView(**d.model_dump()) for d in decisions],
            open_alerts=[_alert(a) for a in open_alerts],
            discharge=DischargeReadiness(
                allowed=row.status == CHECKED_IN and not blockers,
                blockers=[b.as_dict() for b in blockers],
            ),
        )


@router.post(
    "/sessions/{session_id}/vitals",
    status_code=201,
    response_model=VitalsResult,
    summary="Record a reading (the fields of VitalsRecorded)",
    responses={
        200: {"description": "this reading_id was already recorded; no second effect"},
        **error_responses(404, 409),
    },
)
async def record_vitals(
    session_id: str,
    cmd: RecordVitals,
    principal: VitalsWriter,
    uow: Uow,
    request: Request,
    response: Response,
) -> VitalsResult:
    async with uow:
        row = await _session_for(uow, session_id, principal)
        commands.require_open(row)
        result, reading_id, recorded_at = await commands.record_vitals(
            uow, _ingest(request), row, cmd
        )
    if result.duplicates:
        response.status_code = 200
    return VitalsResult(
        reading_id=reading_id,
        session_id=session_id,
        recorded_at=recorded_at,
        duplicate=bool(result.duplicates),
        alerts=[_alert(a) for a in result.raised],
        resolved_alert_ids=[a.alert_id for a in result.resolved],
        observations=[ObservationView(kind=k, due_at=d) for k, d in result.prompts],
    )


@router.post(
    "/sessions/{session_id}/doses",
    responses=error_responses(404, 409),
    status_code=201,
    response_model=DoseView,
    summary="Record a dose (DoseAdministered)",
)
async def record_dose(
    session_id: str, cmd: RecordDose, principal: Dosing, uow: Uow, request: Request
) -> DoseView:
    async with uow:
        row = await _session_for(uow, session_id, principal)
        dose = await commands.record_dose(uow, row, cmd, _rules(request, row.site_id), principal)
    return DoseView(**dose.model_dump())


@router.post(
    "/sessions/{session_id}/predose-decision",
    responses=error_responses(404, 409),
    status_code=201,
    response_model=DecisionView,
    summary="SPR-PRE-5: a prescriber's proceed/defer on an elevated pre-dose BP",
)
async def decide_predose(
    session_id: str, cmd: DecidePredose, principal: Prescriber, uow: Uow
) -> DecisionView:
    async with uow:
        row = await _session_for(uow, session_id, principal)
        decision = await commands.decide_predose(uow, row, cmd, principal)
    return DecisionView(**decision.model_dump())


@router.post(
    "/sessions/{session_id}/alerts/{alert_id}/resolve",
    responses=error_responses(404, 409),
    response_model=AlertView,
    summary="A prescriber resolves an alert after assessing the patient",
)
async def resolve_alert(
    session_id: str, alert_id: str, cmd: ResolveAlert, principal: Prescriber, uow: Uow
) -> AlertView:
    async with uow:
        row = await _session_for(uow, session_id, principal)
        alert = await commands.resolve_by_prescriber(uow, row, alert_id, cmd, principal)
    return _alert(alert)


@router.post(
    "/sessions/{session_id}/discharge",
    responses=error_responses(404, 409),
    response_model=DischargeView,
    summary="Discharge: 409 naming the rule while a criterion fails (DischargeCleared)",
)
async def discharge_session(
    session_id: str, principal: Dosing, uow: Uow, request: Request
) -> DischargeView:
    async with uow:
        row = await _session_for(uow, session_id, principal)
        row = await commands.discharge_session(uow, row, _rules(request, row.site_id), principal)
    return DischargeView(
        session_id=row.session_id,
        status=row.status,
        first_dose_at=row.first_dose_at,
        cleared_at=row.discharged_at,
        observed_minutes=row.observed_minutes,
    )


@router.post(
    "/patients/{patient_id}/measures",
    responses=error_responses(404),
    status_code=201,
    response_model=MeasureView,
    summary="PHQ-9 / GAD-7 / PCL-5 answers (OutcomeRecorded, SafetyConcernRaised)",
)
async def record_measure(
    patient_id: str, cmd: RecordMeasure, principal: Rater, uow: Uow, request: Request
) -> MeasureView:
    async with uow:
        patient = await measures.find_patient(uow, patient_id)
        ensure_site(principal, patient.site_id)
        result = await measures.record_measure(
            uow, patient, cmd, _rules(request, patient.site_id), principal
        )
    return MeasureView(
        **result.measure.model_dump(),
        safety_concern=result.safety_concern.value if result.safety_concern else None,
    )
