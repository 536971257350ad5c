"""KAP-2 deadlines: the durable timer that reports a missing integration session.

The timer is set in the same transaction that completes the dosing session and
cancelled in the one that completes the integration session; the timer worker
fires it, marks it fired and publishes IntegrationOverdue in one transaction, so
a restart neither loses nor repeats it.
"""

from __future__ import annotations

from kap_shared.events import IntegrationOverdue
from kap_shared.events.envelope import utc_now
from kap_shared.events.scheduling import IntegrationOverdueData
from kap_shared.logging import get_logger
from kap_shared.messaging.timers import ScheduledJob, TimerHandler
from kap_shared.messaging.unit_of_work import UnitOfWork

from ..adapters.tables import IntegrationDeadline, Plan, TreatmentSession
from ..domain.model import DeadlineStatus
from .events import plan_fields
from .sessions import INTEGRATION_DUE

log = get_logger(__name__)


async def on_integration_due(job: ScheduledJob, uow: UnitOfWork) -> None:
    deadline = await uow.session.get(IntegrationDeadline, job.payload["dosing_session_id"])
    if deadline is None or deadline.status != DeadlineStatus.OPEN.value:
        return  # met meanwhile
    plan = await uow.session.get(Plan, deadline.plan_id)
    dosing = await uow.session.get(TreatmentSession, deadline.dosing_session_id)
    if plan is None or dosing is None:  # foreign keys guarantee both
        log.warning("integration_due.orphan", dosing_session_id=deadline.dosing_session_id)
        return
    deadline.status = DeadlineStatus.OVERDUE.value
    deadline.overdue_at = utc_now()
    uow.session.add(deadline)
    uow.publish(
        IntegrationOverdue(
            **plan_fields(plan, causation_id=dosing.completed_event_id),
            data=IntegrationOverdueData(
                dosing_session_id=deadline.dosing_session_id,
                due_by=deadline.due_by,
                therapist_id=deadline.therapist_id,
                rule_id="KAP-2",
            ),
        )
    )
    log.info("integration.overdue", dosing_session_id=deadline.dosing_session_id)


TIMERS: dict[str, TimerHandler] = {INTEGRATION_DUE: on_integration_due}
