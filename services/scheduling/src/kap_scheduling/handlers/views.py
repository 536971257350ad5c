"""What `GET /patients/{id}/plan` shows: the plan with its sessions, consents,
open holds, integration deadlines and the next action for the coordinator; and the
sessions of a site's day with their plans (`GET /sites/{id}/sessions`, the floor)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlmodel import col, select

from kap_shared.messaging.unit_of_work import UnitOfWork
from kap_shared.rules import SiteRules

from ..adapters import repository as repo
from ..adapters.tables import Consent, Hold, IntegrationDeadline, Plan, TreatmentSession
from ..domain.guidance import PlanState, next_action, warnings
from ..domain.model import SiteInfo, Violation
from ..domain.rules import SchedulingRules


@dataclass(frozen=True)
class PlanSnapshot:
    plan: Plan
    site: SiteInfo
    rules: SchedulingRules
    sessions: list[TreatmentSession]  # the plan's, in time order
    consents: list[Consent]
    holds: list[Hold]  # open
    deadlines: list[IntegrationDeadline]
    next_action: str
    warnings: list[Violation]


async def plan_snapshot(
    uow: UnitOfWork, plan: Plan, site_rules: SiteRules[SchedulingRules], now: datetime
) -> PlanSnapshot:
    session = uow.session
    rules = site_rules.for_site(plan.site_id)
    site = await repo.site_info(session, plan.site_id)
    everything = await repo.patient_sessions(session, plan.patient_id)
    consents = await repo.consents_of(session, plan.patient_id)
    holds = await repo.open_holds(session, plan.patient_id)
    deadlines = await repo.deadlines_of(session, plan.patient_id)
    mine = [s for s in everything if s.plan_id == plan.plan_id]
    state = PlanState(
        plan=repo.to_plan(plan),
        site=site,
        sessions=[repo.to_slot(s) for s in mine],
        patient_sessions=[repo.to_slot(s) for s in everything],
        consents=repo.to_consents(consents),
        holds=[repo.to_hold(h) for h in holds],
        deadlines=[repo.to_deadline(d) for d in deadlines],
    )
    return PlanSnapshot(
        plan=plan,
        site=site,
        rules=rules,
        sessions=mine,
        consents=consents,
        holds=holds,
        deadlines=deadlines,
        next_action=next_action(state, rules, site.local(now).date()),
        warnings=warnings(state, rules, now),
    )


async def site_day(
    uow: UnitOfWork, site_id: str, start: datetime, end: datetime
) -> list[tuple[TreatmentSession, Plan]]:
    """A site's sessions starting in [start, end), in time order, each with its plan
    (one query for the plans, not one per session)."""
    rows = await repo.site_sessions(uow.session, site_id, start, end)
    ids = {row.plan_id for row in rows}
    plans = {
        plan.plan_id: plan
        for plan in await uow.session.exec(select(Plan).where(col(Plan.plan_id).in_(ids)))
    }
    return [(row, plans[row.plan_id]) for row in rows if row.plan_id in plans]
