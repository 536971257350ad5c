"""SPR-MON-1: the BP check about 40 minutes after the first dose, on durable timers.

When the first dose is recorded (or an earlier one is charted late), two timers
are set in the dose's unit of work: a reminder at +35 min and an overdue notice at
+50 min. Each fires once, after restarts too, and publishes `ObservationDue`
(`kind` `bp_check_40min` / `bp_check_40min_overdue`, `due_at` = first dose + 40
min). A BP reading recorded within +/- 10 min of the due time cancels both; so
does discharge or cancellation.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta

from kap_shared.events.enums import ObservationKind
from kap_shared.events.envelope import as_utc, utc_now
from kap_shared.messaging import timers
from kap_shared.messaging.timers import ScheduledJob, TimerHandler
from kap_shared.messaging.unit_of_work import UnitOfWork
from kap_shared.rules import SiteRules

from ..adapters import store
from ..adapters.tables import CHECKED_IN, MonitoredSession
from ..domain.rules import SPR_MON_1, MonitoringRules
from .alerts import observation_due

REMINDER = "bp_check_40min_reminder"
OVERDUE = "bp_check_40min_overdue"
# ObservationDue kinds: the contract's vocabulary.
KIND_DUE = ObservationKind.BP_CHECK_40MIN
KIND_OVERDUE = ObservationKind.BP_CHECK_40MIN_OVERDUE


def reminder_key(session_id: str) -> str:
    return f"{REMINDER}:{session_id}"


def overdue_key(session_id: str) -> str:
    return f"{OVERDUE}:{session_id}"


BP_CHECK_KEYS: tuple[Callable[[str], str], ...] = (reminder_key, overdue_key)


def bp_check_due(first_dose_at: datetime, rules: MonitoringRules) -> datetime:
    return first_dose_at + timedelta(minutes=rules.bp_check_due_minutes)


async def plan_bp_check(
    uow: UnitOfWork, row: MonitoredSession, rules: MonitoringRules, now: datetime
) -> None:
    """(Re)set the SPR-MON-1 timers for the session's first dose; part of the dose's
    transaction. A reading already in the window satisfies the check at once; a
    reminder whose overdue time has passed is not sent (only the overdue notice)."""
    first = row.first_dose_at
    if first is None:
        return
    tolerance = timedelta(minutes=rules.bp_check_tolerance_minutes)
    due = bp_check_due(first, rules)
    row.bp_check_done = await store.bp_recorded_between(
        uow.session, row.session_id, due - tolerance, due + tolerance
    )
    if row.bp_check_done:
        await cancel_bp_check(uow, row.session_id)
        return
    payload = {"session_id": row.session_id}
    overdue_at = first + timedelta(minutes=rules.bp_check_overdue_minutes)
    if now < overdue_at:
        await timers.schedule(
            uow.session,
            kind=REMINDER,
            key=reminder_key(row.session_id),
            due_at=first + timedelta(minutes=rules.bp_check_reminder_minutes),
            payload=payload,
        )
    else:
        await timers.cancel(uow.session, reminder_key(row.session_id))
    await timers.schedule(
        uow.session,
        kind=OVERDUE,
        key=overdue_key(row.session_id),
        due_at=overdue_at,
        payload=payload,
    )


async def cancel_bp_check(uow: UnitOfWork, session_id: str) -> None:
    for key in BP_CHECK_KEYS:
        await timers.cancel(uow.session, key(session_id))


def timer_handlers(
    rules: SiteRules[MonitoringRules], clock: Callable[[], datetime] = utc_now
) -> dict[str, TimerHandler]:
    """The handlers to register with `runtime.timers(...)`."""

    async def fire(job: ScheduledJob, uow: UnitOfWork, kind: str) -> None:
        session_id = str(job.payload["session_id"])
        await store.lock_sessions(uow.session, [session_id])
        row = await uow.session.get(MonitoredSession, session_id, populate_existing=True)
        if row is None or row.status != CHECKED_IN or row.first_dose_at is None:
            return  # discharged or cancelled meanwhile
        if row.bp_check_done:
            return
        site_rules = rules.for_site(row.site_id)
        observation_due(
            uow,
            row,
            kind=kind,
            rule_id=SPR_MON_1,
            due_at=bp_check_due(as_utc(row.first_dose_at), site_rules),
            now=clock(),
        )

    async def on_reminder(job: ScheduledJob, uow: UnitOfWork) -> None:
        await fire(job, uow, KIND_DUE)

    async def on_overdue(job: ScheduledJob, uow: UnitOfWork) -> None:
        await fire(job, uow, KIND_OVERDUE)

    return {REMINDER: on_reminder, OVERDUE: on_overdue}
