"""HTTP API (CONTRACT section 4). Thin: authorize, translate, call a use case.

Roles: nurses and prescribers record doses and discharge; devices, nurses and
prescribers post vitals; only prescribers decide an elevated pre-dose BP
(SPR-PRE-5), resolve an alert or an in-session safety concern by hand; the
stability assessment that signs a discharge is a prescriber's by default (the
site's `discharge_signer_roles`); every clinical role may read a session;
prescribers, nurses, therapists and coordinators record outcome measures. Every
request must also be for a session or patient of one of the caller's sites.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Annotated, Any, TypeVar

from fastapi import APIRouter, Depends, Query, Request, Response
from pydantic import AwareDatetime

from kap_shared.auth import Principal, ensure_site, require_roles
from kap_shared.events.enums import Role
from kap_shared.events.envelope import utc_now
from kap_shared.http.dependencies import Uow, runtime_of
from kap_shared.http.errors import NotFound
from kap_shared.http.idempotency import IdempotencyKey
from kap_shared.http.openapi import Responses, error_responses
from kap_shared.messaging.unit_of_work import UnitOfWork

from ..adapters.tables import MonitoredSession
from ..config import MonitoringSettings
from ..domain.commands import (
    AssessStability,
    DecidePredose,
    RecordDose,
    RecordMeasure,
    RecordVitals,
    ResolveAlert,
    ResolveConcern,
)
from ..domain.rules import MonitoringRules
from ..handlers import commands, measures, views
from ..handlers.views import (
    AlertView,
    AssessmentView,
    ConcernView,
    DecisionView,
    DischargeView,
    DoseView,
    MeasureView,
    SessionView,
    VitalsResult,
)
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
# Who may try to sign: the site's rules decide (409 SPR-DIS-1 / MON-DIS-3 otherwise).
Assessor = Annotated[Principal, Depends(require_roles(Role.NURSE, Role.PRESCRIBER))]
Rater = Annotated[
    Principal,
    Depends(require_roles(Role.PRESCRIBER, Role.NURSE, Role.THERAPIST, Role.COORDINATOR)),
]


def _rules(request: Request, site_id: str) -> MonitoringRules:
    settings: MonitoringSettings = runtime_of(request).settings  # type: ignore[assignment]
    return settings.monitoring_rules.for_site(site_id)


def _ingest(request: Request) -> VitalsIngest:
    ingest: VitalsIngest = request.app.state.ingest
    return ingest


# Statuses every endpoint may answer besides its success (CONTRACT section 4).
# 401/403/422/503 are documented by the platform (kap_shared.http.openapi); these are ours.
ERRORS = error_responses(404, 409)
READ_ERRORS = error_responses(404)
_Route = TypeVar("_Route", bound=Callable[..., Any])
_Result = TypeVar("_Result")


@router.get(
    "/sessions/{session_id}",
    response_model=SessionView,
    summary="A monitoring window, with every discharge blocker and what clears it",
    responses=READ_ERRORS,
)
async def get_session(
    session_id: str, principal: Reader, uow: Uow, request: Request
) -> SessionView:
    async with uow:
        row = await views.session_row(uow, session_id)
        if row is None:
            raise NotFound("session", session_id)
        ensure_site(principal, row.site_id)
        return await views.session_view(uow, row, _rules(request, row.site_id), utc_now())


@dataclass(frozen=True)
class _SessionWrite:
    """What every change to a monitoring window needs; `change` runs the shared steps."""

    uow: UnitOfWork
    request: Request

    def rules(self, row: MonitoredSession) -> MonitoringRules:
        return _rules(self.request, row.site_id)

    async def change(
        self,
        session_id: str,
        principal: Principal,
        use_case: Callable[[MonitoredSession], Awaitable[_Result]],
    ) -> _Result:
        """Lock the session (404), check the caller's site (403), run the use case."""
        async with self.uow:
            row = await commands.locked_session(self.uow, session_id)
            ensure_site(principal, row.site_id)
            return await use_case(row)


async def _session_write(uow: Uow, request: Request) -> _SessionWrite:
    # async: FastAPI would run a plain function in a worker thread
    return _SessionWrite(uow, request)


SessionWrite = Annotated[_SessionWrite, Depends(_session_write)]


def _session_post(
    action: str,
    view: type[Any],
    summary: str,
    *,
    keyed: bool = True,
    created: bool = False,
    responses: Responses = ERRORS,
) -> Callable[[_Route], _Route]:
    """`POST /sessions/{session_id}/<action>`; keyed ones take an Idempotency-Key."""
    return router.post(
        f"/sessions/{{session_id}}/{action}",
        dependencies=[IdempotencyKey] if keyed else [],
        status_code=201 if created else 200,
        response_model=view,
        summary=summary,
        responses=responses,
    )


@router.get(
    "/sites/{site_id}/sessions",
    response_model=list[SessionView],
    summary="A site's monitoring windows starting in [from, to): the treatment floor",
    # 403 (a site not in the token, or a role not allowed) and the rest come with the app.
    responses=error_responses(),
)
async def site_sessions(
    site_id: str,
    principal: Reader,
    uow: Uow,
    request: Request,
    start: Annotated[AwareDatetime, Query(alias="from", description="ISO 8601 with offset")],
    end: Annotated[
        AwareDatetime | None, Query(alias="to", description="default: from + 1 day")
    ] = None,
) -> list[SessionView]:
    """Each session as `GET /sessions/{id}` shows it (state, doses, latest values,
    open alerts and concerns, every discharge blocker with what clears it), in time
    order: one call for the console's board instead of one per chair."""
    ensure_site(principal, site_id)
    async with uow:
        return await views.site_day_view(
            uow,
            site_id,
            start,
            end or start + timedelta(days=1),
            lambda site: _rules(request, site),
            utc_now(),
        )


@_session_post(
    "vitals",
    VitalsResult,
    "Record a reading (the fields of VitalsRecorded)",
    created=True,
    responses={
        **ERRORS,
        200: {"description": "this reading_id was already recorded; no second effect"},
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
        result, reading_id, recorded_at = await commands.record_vitals(
            uow,
            _ingest(request),
            session_id,
            cmd,
            check=lambda row: ensure_site(principal, row.site_id),
        )
    if result.duplicates:
        response.status_code = 200
    return VitalsResult.of(session_id, reading_id, recorded_at, result)


@_session_post(
    "doses",
    DoseView,
    "Record a dose (DoseAdministered); 409 naming the rule at every closed gate",
    created=True,
)
async def record_dose(
    session_id: str, cmd: RecordDose, principal: Dosing, write: SessionWrite
) -> DoseView:
    dose = await write.change(
        session_id,
        principal,
        lambda row: commands.record_dose(write.uow, row, cmd, write.rules(row), principal),
    )
    return DoseView.of(dose)


@_session_post(
    "predose-decision",
    DecisionView,
    "SPR-PRE-5: a prescriber's proceed/defer on an elevated pre-dose BP",
    created=True,
)
async def decide_predose(
    session_id: str, cmd: DecidePredose, principal: Prescriber, write: SessionWrite
) -> DecisionView:
    decision = await write.change(
        session_id,
        principal,
        lambda row: commands.decide_predose(write.uow, row, cmd, principal),
    )
    return DecisionView.of(decision)


@_session_post(
    "alerts/{alert_id}/resolve",
    AlertView,
    "A prescriber resolves an alert after assessing the patient",
)
async def resolve_alert(
    session_id: str, alert_id: str, cmd: ResolveAlert, principal: Prescriber, write: SessionWrite
) -> AlertView:
    alert = await write.change(
        session_id,
        principal,
        lambda row: commands.resolve_by_prescriber(write.uow, row, alert_id, cmd, principal),
    )
    return AlertView.of(alert)


@_session_post(
    "safety-concerns/{concern_id}/resolve",
    ConcernView,
    "A prescriber's coded decision on an in-session safety concern (MBC-1)",
    keyed=False,
)
async def resolve_concern(
    session_id: str,
    concern_id: str,
    cmd: ResolveConcern,
    principal: Prescriber,
    write: SessionWrite,
) -> ConcernView:
    concern = await write.change(
        session_id,
        principal,
        lambda row: commands.resolve_concern(write.uow, row, concern_id, cmd, principal),
    )
    return ConcernView.of(concern)


@_session_post(
    "stability-assessment",
    AssessmentView,
    "The clinician's stability assessment that signs the discharge (SPR-DIS-1)",
    keyed=False,
    created=True,
)
async def assess_stability(
    session_id: str, cmd: AssessStability, principal: Assessor, write: SessionWrite
) -> AssessmentView:
    assessment = await write.change(
        session_id,
        principal,
        lambda row: commands.assess_stability(write.uow, row, cmd, write.rules(row), principal),
    )
    return AssessmentView.of(assessment)


@_session_post(
    "discharge",
    DischargeView,
    "Discharge: 409 naming the rule while a criterion fails (DischargeCleared)",
)
async def discharge_session(
    session_id: str, principal: Dosing, write: SessionWrite
) -> DischargeView:
    row = await write.change(
        session_id,
        principal,
        lambda row: commands.discharge_session(write.uow, row, write.rules(row), principal),
    )
    return DischargeView.of(row)


@router.post(
    "/patients/{patient_id}/measures",
    dependencies=[IdempotencyKey],
    status_code=201,
    response_model=MeasureView,
    summary="PHQ-9 / GAD-7 / PCL-5 answers (OutcomeRecorded, SafetyConcernRaised)",
    responses=ERRORS,
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
    return MeasureView.of(result)
