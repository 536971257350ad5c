"""SPR-SCH-1: the end of esketamine induction asks the prescriber to evaluate the
benefit before treatment continues. `InductionReviewDue` is published exactly once
per plan: when the 8th dosing session is completed, or at the end of treatment
week 4 (a durable timer set at the first dosing check-in), whichever comes first.
The plan row records it in the same transaction as the outbox event, so a
redelivery, a restart or the second trigger publishes nothing more.
"""

from __future__ import annotations

from datetime import datetime, time, timedelta

from kap_shared.events import InductionReviewDue
from kap_shared.events.envelope import utc_now
from kap_shared.events.scheduling import InductionReviewDueData
from kap_shared.logging import get_logger
from kap_shared.messaging import timers
from kap_shared.messaging.timers import ScheduledJob
from kap_shared.messaging.unit_of_work import UnitOfWork

from ..adapters import repository as repo
from ..adapters.tables import Plan, TreatmentSession
from ..domain import rules as r
from ..domain.model import PlanStatus, SessionStatus, SiteInfo
from ..domain.protocols import ESKETAMINE_TRD
from ..domain.rules import SchedulingRules
from .events import plan_fields

INDUCTION_REVIEW = "induction-review"

log = get_logger(__name__)


def review_key(plan_id: str) -> str:
    return f"{INDUCTION_REVIEW}:{plan_id}"


def week_boundary(site: SiteInfo, first_dosing_starts_at: datetime, weeks: int) -> datetime:
    """Site-local midnight after treatment week `weeks` (counted from the first dose's day)."""
    first_day = site.local(first_dosing_starts_at).date()
    return datetime.combine(first_day + timedelta(days=7 * weeks), time(0), site.zone)


async def start_induction_clock(
    uow: UnitOfWork, plan: Plan, first_dosing: TreatmentSession, rules: SchedulingRules
) -> None:
    """At the first dosing check-in of an esketamine plan: the week-4 timer."""
    if plan.protocol != ESKETAMINE_TRD.name:
        return
    site = await repo.site_info(uow.session, plan.site_id)
    await timers.schedule(
        uow.session,
        kind=INDUCTION_REVIEW,
        key=review_key(plan.plan_id),
        due_at=week_boundary(site, first_dosing.starts_at, rules.esketamine_induction_weeks),
        payload={"plan_id": plan.plan_id},
    )


async def after_dosing_completed(
    uow: UnitOfWork, plan: Plan, completed: int, rules: SchedulingRules, now: datetime
) -> None:
    """The 8th completed dosing session ends induction (if week 4 has not already)."""
    if plan.protocol != ESKETAMINE_TRD.name or plan.induction_review_due_at is not None:
        return
    if completed >= rules.esketamine_induction_sessions:
        publish_review(uow, plan, completed, now)
        await timers.cancel(uow.session, review_key(plan.plan_id))


def publish_review(uow: UnitOfWork, plan: Plan, completed: int, now: datetime) -> None:
    plan.induction_review_due_at, plan.induction_review_sessions = now, completed
    uow.session.add(plan)
    uow.publish(
        InductionReviewDue(
            **plan_fields(plan, occurred_at=now),
            data=InductionReviewDueData(
                plan_id=plan.plan_id,
                prescriber_id=plan.prescriber_id or "",
                dosing_sessions_completed=completed,
                rule_id=r.INDUCTION_REVIEW,
            ),
        )
    )
    log.info("induction.review_due", plan_id=plan.plan_id, completed=completed)


async def on_week_boundary(job: ScheduledJob, uow: UnitOfWork) -> None:
    """End of treatment week 4: the review is due even if fewer sessions were completed."""
    plan = await uow.session.get(Plan, job.payload["plan_id"])
    if plan is None or plan.induction_review_due_at is not None:
        return  # already due (8th session)
    if plan.status != PlanStatus.ACTIVE.value:
        log.info("induction.review_skipped", plan_id=plan.plan_id, status=plan.status)
        return
    sessions = await repo.patient_sessions(uow.session, plan.patient_id)
    completed = sum(
        1
        for s in sessions
        if s.plan_id == plan.plan_id
        and s.phase == "dosing"
        and s.status == SessionStatus.COMPLETED.value
    )
    publish_review(uow, plan, completed, utc_now())
