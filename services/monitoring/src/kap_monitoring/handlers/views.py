"""What monitoring's endpoints answer: response models and the queries that build
them (the routes stay thin). `session_view` is the nurse's and prescriber's view of
a monitoring window: doses with both clocks (given / charted), decisions, latest
values, open alerts and safety concerns, and every discharge blocker with its rule
id and what would clear it."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar, cast

from pydantic import BaseModel
from sqlalchemy import ColumnElement, Connection, Row, Select, Table, bindparam
from sqlalchemy import select as select_rows
from sqlmodel import SQLModel, col

from kap_shared.events.enums import Severity
from kap_shared.messaging.unit_of_work import UnitOfWork

from ..adapters import store
from ..adapters.tables import (
    CHECKED_IN,
    OPEN,
    Alert,
    Dose,
    MonitoredSession,
    PredoseDecision,
    SafetyConcern,
    StabilityAssessment,
)
from ..domain import discharge
from ..domain.discharge import StabilityCriteria
from ..domain.outcomes import Outcome
from ..domain.rules import MonitoringRules
from ..domain.vitals import GROUP_METRICS, VitalsState, from_micros
from . import commands
from .measures import MeasureResult
from .vitals import IngestResult


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

    @classmethod
    def of(cls, alert: Alert) -> AlertView:
        return cls(**alert.model_dump(exclude={"resolution_note"}))


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

    @classmethod
    def of(
        cls, session_id: str, reading_id: str, recorded_at: datetime, result: IngestResult
    ) -> VitalsResult:
        return cls(
            reading_id=reading_id,
            session_id=session_id,
            recorded_at=recorded_at,
            duplicate=bool(result.duplicates),
            alerts=[AlertView.of(a) for a in result.raised],
            resolved_alert_ids=[a.alert_id for a in result.resolved],
            observations=[ObservationView(kind=k, due_at=d) for k, d in result.prompts],
        )


class DoseView(BaseModel):
    dose_id: str
    session_id: str
    agent: str
    route: str
    dose_mg: float
    device_number: int | None
    # When it was given and when it was charted: two clocks, both shown.
    administered_at: datetime
    charted_at: datetime | None
    # End of dosing (KET-DIS-6) and where it came from: charted, default, device.
    dosing_ended_at: datetime
    dosing_ended_source: str
    concomitant_medications: list[str] | None
    nasal_medication_used: bool | None
    nasal_medication_at: datetime | None
    recorded_by: str

    @classmethod
    def of(cls, dose: Dose) -> DoseView:
        return cls(
            **dose.model_dump(exclude={"ends_at", "ends_at_source", "event_id", "created_at"}),
            dosing_ended_at=dose.ends_at,
            dosing_ended_source=dose.ends_at_source,
        )


class DecisionView(BaseModel):
    decision_id: str
    session_id: str
    decision: str
    reason: str
    decided_by: str
    decided_at: datetime

    @classmethod
    def of(cls, decision: PredoseDecision) -> DecisionView:
        return cls(**decision.model_dump(exclude={"note"}))


class AssessmentView(StabilityCriteria):
    assessment_id: str
    session_id: str
    assessed_by: str
    role: str
    assessed_at: datetime
    ready_to_leave_minutes: int | None

    @classmethod
    def of(cls, assessment: StabilityAssessment) -> AssessmentView:
        return cls(**assessment.model_dump())


class ConcernView(BaseModel):
    concern_id: str
    patient_id: str
    session_id: str | None
    rule_id: str
    source: str
    value: float
    severity: str
    status: str
    raised_at: datetime
    resolved_at: datetime | None
    resolved_by: str | None
    resolution: str | None

    @classmethod
    def of(cls, concern: SafetyConcern) -> ConcernView:
        return cls(**concern.model_dump(exclude={"resolution_note", "event_id"}))


class DischargeView(BaseModel):
    session_id: str
    status: str
    first_dose_at: datetime | None
    cleared_at: datetime | None
    observed_minutes: float | None
    signed_by: str | None
    discharged_by: str | None

    @classmethod
    def of(cls, row: MonitoredSession) -> DischargeView:
        same_names = row.model_dump(include=set(cls.model_fields) - {"cleared_at"})
        return cls(**same_names, cleared_at=row.discharged_at)


class LatestValue(BaseModel):
    value: float
    recorded_at: datetime


class DissociationView(BaseModel):
    value: str
    cadss_total: int | None
    recorded_at: datetime


class DischargeReadiness(BaseModel):
    allowed: bool
    # Each: rule_id, message, clear (what would clear it) and details.
    blockers: list[dict[str, Any]]


class SessionView(BaseModel):
    session_id: str
    patient_id: str
    site_id: str
    plan_id: str
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
    dissociation: DissociationView | None
    doses: list[DoseView]
    decisions: list[DecisionView]
    open_alerts: list[AlertView]
    open_safety_concerns: list[ConcernView]
    stability_assessment: AssessmentView | None
    discharge: DischargeReadiness
    discharged_at: datetime | None
    discharged_by: str | None
    signed_by: str | None
    observed_minutes: float | None


class MeasureView(Outcome):
    measure_id: str
    patient_id: str
    # Rule ids of the follow-ups this result asks for (MBC-2, MBC-4, ...).
    follow_up: list[str]
    # MBC-1: severity of the SafetyConcernRaised this measure caused, if any.
    safety_concern: str | None

    @classmethod
    def of(cls, result: MeasureResult) -> MeasureView:
        return cls(
            **result.measure.model_dump(),
            safety_concern=result.safety_concern.value if result.safety_concern else None,
        )


async def session_row(uow: UnitOfWork, session_id: str) -> SessionRow | None:
    """The session's row for `session_view` (None: monitoring does not know it)."""
    connection = await uow.session.connection()
    found = await connection.execute(_SESSION, {"session_id": session_id})
    return found.first()


async def session_view(
    uow: UnitOfWork, row: SessionRow, rules: MonitoringRules, now: datetime
) -> SessionView:
    return (await _views(uow, [row], lambda _: rules, now))[0]


async def site_day_view(
    uow: UnitOfWork,
    site_id: str,
    start: datetime,
    end: datetime,
    rules: Callable[[str], MonitoringRules],
    now: datetime,
) -> list[SessionView]:
    """A site's sessions starting in [start, end), in time order, each as
    `session_view` shows it: the treatment floor's board in one request (a handful of
    queries for the whole board, not a handful per session)."""
    connection = await uow.session.connection()
    rows = await connection.execute(_SITE_DAY, {"site_id": site_id, "start": start, "end": end})
    return await _views(uow, list(rows), rules, now)


def _table(model: type[SQLModel]) -> Table:
    return cast(Table, model.__table__)  # type: ignore[attr-defined]


def _columns(table: type[SQLModel], view: type[BaseModel], renamed: dict[str, str]) -> list[Any]:
    """The table's columns a view shows, each labelled with the view's field name
    (`renamed`: view field -> column), so a row validates straight into the view."""
    columns = _table(table).c
    return [columns[renamed.get(name, name)].label(name) for name in view.model_fields]


# Sessions as Core rows of the table's columns, read by attribute as the table model
# would be (`commands.facts_of`), without the ORM's identity map, instance state and
# loading (`Session.get` was a third of a GET's handler). Statements built once:
# SQLAlchemy then also keeps each one's cache key instead of building both per request.
SessionRow = Row[Any]
_SESSIONS = _table(MonitoredSession).c
_SESSION = select_rows(*_SESSIONS).where(_SESSIONS.session_id == bindparam("session_id"))
_SITE_DAY = (
    select_rows(*_SESSIONS)
    .where(_SESSIONS.site_id == bindparam("site_id"))
    .where(_SESSIONS.starts_at >= bindparam("start"))
    .where(_SESSIONS.starts_at < bindparam("end"))
    .order_by(_SESSIONS.starts_at, _SESSIONS.session_id)
)
# What SessionView leaves out of the session's columns.
_NOT_SHOWN = frozenset({"rule_state", "version", "updated_at"})

_DOSE_COLUMNS = {"dosing_ended_at": "ends_at", "dosing_ended_source": "ends_at_source"}
SessionMatch = Callable[[ColumnElement[str]], ColumnElement[bool]]


@dataclass(frozen=True)
class _RelatedReads:
    """The four reads of the rows related to the sessions a `SessionMatch` picks, each a
    Core select of its view's columns. Rows, not ORM entities: the view is built from
    them at once, so the identity map, instance state and row loading would be pure
    cost (the ORM was ~40 % of a GET)."""

    doses: Select[Any]
    decisions: Select[Any]
    concerns: Select[Any]
    assessments: Select[Any]  # newest first, whole rows: `commands.facts_of` reads them

    @classmethod
    def of(cls, matches: SessionMatch) -> _RelatedReads:
        def rows(
            table: type[SQLModel], view: type[BaseModel], renamed: dict[str, str] | None = None
        ) -> Select[Any]:
            columns = _columns(table, view, renamed or {})
            return select_rows(*columns).where(matches(_table(table).c.session_id))

        return cls(
            doses=rows(Dose, DoseView, _DOSE_COLUMNS).order_by(col(Dose.administered_at)),
            decisions=rows(PredoseDecision, DecisionView).order_by(col(PredoseDecision.decided_at)),
            concerns=rows(SafetyConcern, ConcernView)
            .where(col(SafetyConcern.status) == OPEN)
            .order_by(col(SafetyConcern.raised_at)),
            assessments=select_rows(*_table(StabilityAssessment).c)
            .where(matches(_table(StabilityAssessment).c.session_id))
            .order_by(col(StabilityAssessment.assessed_at).desc()),
        )


# A site's day reads a set of sessions (`:ids`); a GET reads one (`:session_id`), in a
# plain comparison: an expanding IN is rendered anew on every execution.
_OF_SESSIONS = _RelatedReads.of(lambda session_id: session_id.in_(bindparam("ids", expanding=True)))
_OF_SESSION = _RelatedReads.of(lambda session_id: session_id == bindparam("session_id"))

Model = TypeVar("Model", bound=BaseModel)


def _by_session(
    connection: Connection, statement: Select[Any], params: dict[str, Any], model: type[Model]
) -> dict[str, list[Model]]:
    """The statement's rows as `model`s, grouped by their session, in the rows' order."""
    grouped: dict[str, list[Model]] = defaultdict(list)
    for found in connection.execute(statement, params).mappings():
        grouped[found["session_id"]].append(model.model_validate(found))
    return grouped


@dataclass(frozen=True)
class _Related:
    """A set of sessions' related rows, by session."""

    doses: dict[str, list[DoseView]]
    decisions: dict[str, list[DecisionView]]
    concerns: dict[str, list[ConcernView]]
    assessments: dict[str, list[StabilityAssessment]]  # newest first


def _read_related(connection: Connection, reads: _RelatedReads, params: dict[str, Any]) -> _Related:
    """The four reads in one call of `AsyncConnection.run_sync`: awaited one by one,
    each cost a greenlet of its own and a pass through SQLAlchemy's async proxies."""
    return _Related(
        _by_session(connection, reads.doses, params, DoseView),
        _by_session(connection, reads.decisions, params, DecisionView),
        _by_session(connection, reads.concerns, params, ConcernView),
        _by_session(connection, reads.assessments, params, StabilityAssessment),
    )


def _by_session_alerts(alerts: Iterable[Alert]) -> dict[str, list[Alert]]:
    grouped: dict[str, list[Alert]] = defaultdict(list)
    for alert in alerts:
        grouped[alert.session_id].append(alert)
    return grouped


async def _views(
    uow: UnitOfWork,
    rows: list[SessionRow],
    rules: Callable[[str], MonitoringRules],
    now: datetime,
) -> list[SessionView]:
    """The views of several sessions, each related table read once for all of them."""
    if not rows:
        return []
    ids = [row.session_id for row in rows]
    connection = await uow.session.connection()
    if len(ids) == 1:
        related = await connection.run_sync(_read_related, _OF_SESSION, {"session_id": ids[0]})
    else:
        related = await connection.run_sync(_read_related, _OF_SESSIONS, {"ids": ids})
    alerts = _by_session_alerts(await store.open_alerts(uow.session, ids))
    return [
        _view(
            row,
            related.doses.get(row.session_id, []),
            related.decisions.get(row.session_id, []),
            related.concerns.get(row.session_id, []),
            alerts.get(row.session_id, []),
            next(iter(related.assessments.get(row.session_id, [])), None),
            rules(row.site_id),
            now,
        )
        for row in rows
    ]


def _view(
    row: SessionRow,
    doses: list[DoseView],
    decisions: list[DecisionView],
    concerns: list[ConcernView],
    open_alerts: list[Alert],
    assessment: StabilityAssessment | None,
    rules: MonitoringRules,
    now: datetime,
) -> SessionView:
    critical = [a.rule_id for a in open_alerts if a.severity == Severity.CRITICAL.value]
    blockers = (
        discharge.blockers(commands.facts_of(row, critical, assessment), rules, now)
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
    dissociation = (
        DissociationView(
            value=state.dissociation,
            cadss_total=state.cadss_total,
            recorded_at=from_micros(state.dissociation_t),
        )
        if state.dissociation is not None and state.dissociation_t is not None
        else None
    )
    return SessionView(
        **{name: value for name, value in row._mapping.items() if name not in _NOT_SHOWN},
        latest=latest,
        dissociation=dissociation,
        doses=doses,
        decisions=decisions,
        open_alerts=[AlertView.of(a) for a in open_alerts],
        open_safety_concerns=concerns,
        stability_assessment=AssessmentView.of(assessment) if assessment else None,
        discharge=DischargeReadiness(
            allowed=row.status == CHECKED_IN and not blockers,
            blockers=[b.as_dict() for b in blockers],
        ),
    )
