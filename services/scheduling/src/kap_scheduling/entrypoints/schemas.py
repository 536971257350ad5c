"""HTTP response bodies (documented in the OpenAPI at /docs)."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any, Self

from pydantic import BaseModel, Field
from sqlmodel import SQLModel

from kap_shared.events.enums import Phase, Route, SessionStatus

from ..adapters.tables import Plan, TreatmentSession
from ..domain.protocols import PROTOCOLS
from ..domain.rules import SchedulingRules
from ..handlers.views import PlanSnapshot


class RowView(BaseModel):
    """A body that shows a table row as it is: the row's fields the view names."""

    @classmethod
    def of(cls, row: SQLModel) -> Self:
        return cls(**row.model_dump())


class SiteView(RowView):
    site_id: str
    name: str
    timezone: str
    rems_certified_until: date | None


class RoomView(RowView):
    room_id: str
    site_id: str
    name: str


class ClinicianView(RowView):
    clinician_id: str
    role: str
    sites: list[str]
    working_hours: dict[str, Any]


class SessionView(BaseModel):
    session_id: str
    plan_id: str
    patient_id: str
    site_id: str
    phase: Phase
    sequence: int = Field(description="n-th session of its phase in the plan")
    label: str = Field(description='e.g. "Dosing session 2 of 6"')
    starts_at: datetime
    ends_at: datetime
    room_id: str
    therapist_id: str
    therapist_present: bool = Field(
        description="false: named, not at the chair (esketamine dosing, KAP-3)"
    )
    prescriber_id: str | None
    nurse_id: str | None = Field(description="the monitoring nurse, when known")
    status: SessionStatus
    booked_by: str
    checked_in_at: datetime | None
    completed_at: datetime | None
    cancelled_at: datetime | None
    cancel_reason: str | None
    discharge_cleared_at: datetime | None

    @classmethod
    def of(cls, row: TreatmentSession, plan: Plan, rules: SchedulingRules) -> SessionView:
        phase = Phase(row.phase)
        of_total = {
            Phase.DOSING: plan.planned_dosing_sessions,
            Phase.PREPARATION: rules.min_preparation_sessions(Route(plan.route)),
        }.get(phase)
        label = f"{phase.value.capitalize()} session {row.sequence}"
        if of_total and row.sequence <= of_total:
            label += f" of {of_total}"
        return cls(
            **row.model_dump(exclude={"phase", "cancel_note"}),
            phase=phase,
            label=label,
        )


class HoldView(RowView):
    hold_id: str
    patient_id: str
    source: str
    value: float
    severity: str
    raised_at: datetime
    status: str = Field(description="open | cleared")
    cleared_by: str | None
    cleared_at: datetime | None


class DeadlineView(RowView):
    dosing_session_id: str
    therapist_id: str
    due_by: datetime
    status: str = Field(description="open | met | overdue | met_late")
    met_by_session_id: str | None


class ConsentView(BaseModel):
    granted: bool
    recorded_at: datetime


class WarningView(BaseModel):
    rule_id: str
    message: str


class Progress(BaseModel):
    preparation_completed: int
    preparation_required: int
    dosing_booked: int = Field(description="dosing sessions scheduled or checked in")
    dosing_completed: int
    dosing_planned: int
    integration_completed: int


class PlanView(BaseModel):
    plan_id: str
    patient_id: str
    site_id: str
    correlation_id: str = Field(description="the care episode every event of the plan carries")
    status: str = Field(description="awaiting_care_team | active | suspended")
    phase: Phase | None
    route: str
    protocol: str
    protocol_description: str
    planned_dosing_sessions: int
    prescriber_id: str | None
    therapist_id: str | None
    created_at: datetime
    suspended_at: datetime | None
    induction_review_due_at: datetime | None = Field(
        description="SPR-SCH-1: when the prescriber's evaluate-benefit task came due"
    )
    induction_review_sessions: int | None = Field(
        description="SPR-SCH-1: dosing sessions completed when it came due"
    )
    progress: Progress
    sessions: list[SessionView] = Field(description="past and booked, in time order")
    consents: dict[str, ConsentView] = Field(description="latest decision per scope")
    holds: list[HoldView] = Field(description="open safety holds")
    integration_deadlines: list[DeadlineView]
    warnings: list[WarningView] = Field(
        description="soft rules (SPR-SCH-3, KAP-4, KAP-2): never a 409"
    )
    next_action: str

    @classmethod
    def of(cls, snap: PlanSnapshot) -> PlanView:
        plan, rules = snap.plan, snap.rules

        def count(phase: Phase, *statuses: str) -> int:
            return sum(1 for s in snap.sessions if s.phase == phase.value and s.status in statuses)

        protocol = PROTOCOLS.get(plan.protocol)
        return cls(
            **plan.model_dump(exclude={"phase"}),
            phase=Phase(plan.phase) if plan.phase else None,
            protocol_description=protocol.description if protocol else plan.protocol,
            progress=Progress(
                preparation_completed=count(Phase.PREPARATION, SessionStatus.COMPLETED),
                preparation_required=rules.min_preparation_sessions(Route(plan.route)),
                dosing_booked=count(
                    Phase.DOSING, SessionStatus.SCHEDULED, SessionStatus.CHECKED_IN
                ),
                dosing_completed=count(Phase.DOSING, SessionStatus.COMPLETED),
                dosing_planned=plan.planned_dosing_sessions,
                integration_completed=count(Phase.INTEGRATION, SessionStatus.COMPLETED),
            ),
            sessions=[SessionView.of(s, plan, rules) for s in snap.sessions],
            consents={
                c.scope: ConsentView(granted=c.granted, recorded_at=c.recorded_at)
                for c in snap.consents
            },
            holds=[HoldView.of(h) for h in snap.holds],
            integration_deadlines=[DeadlineView.of(d) for d in snap.deadlines],
            warnings=[WarningView(rule_id=w.rule_id, message=w.message) for w in snap.warnings],
            next_action=snap.next_action,
        )
