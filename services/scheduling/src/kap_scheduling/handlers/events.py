"""Building scheduling's events: every event of a plan carries the plan's
site, patient and correlation id (the care episode)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from kap_shared.events import PhaseAdvanced, SessionCancelled
from kap_shared.events.enums import Phase
from kap_shared.events.envelope import envelope_fields
from kap_shared.events.scheduling import PhaseAdvancedData, SessionCancelledData
from kap_shared.messaging.unit_of_work import UnitOfWork

from ..adapters.tables import Plan, TreatmentSession
from ..domain.model import SessionStatus

PRODUCER = "scheduling"


def plan_fields(
    plan: Plan, *, causation_id: str | None = None, occurred_at: datetime | None = None
) -> dict[str, Any]:
    """The envelope of an event about the plan's patient (kap_shared's one helper)."""
    return envelope_fields(
        plan, producer=PRODUCER, causation_id=causation_id, occurred_at=occurred_at
    )


def advance_phase(
    uow: UnitOfWork,
    plan: Plan,
    to_phase: Phase,
    *,
    causation_id: str | None,
    occurred_at: datetime | None = None,
) -> None:
    """Move the plan to `to_phase` and say so (PhaseAdvanced)."""
    from_phase = Phase(plan.phase) if plan.phase else None
    plan.phase = to_phase.value
    uow.session.add(plan)
    uow.publish(
        PhaseAdvanced(
            **plan_fields(plan, causation_id=causation_id, occurred_at=occurred_at),
            data=PhaseAdvancedData(plan_id=plan.plan_id, from_phase=from_phase, to_phase=to_phase),
        )
    )


def cancel(
    uow: UnitOfWork,
    plan: Plan,
    row: TreatmentSession,
    *,
    reason: str,
    by: str,
    at: datetime,
    note: str | None = None,
    causation_id: str | None = None,
) -> None:
    row.status = SessionStatus.CANCELLED.value
    row.cancelled_at, row.cancelled_by = at, by
    row.cancel_reason, row.cancel_note = reason, note
    uow.session.add(row)
    uow.publish(
        SessionCancelled(
            **plan_fields(plan, causation_id=causation_id, occurred_at=at),
            data=SessionCancelledData(
                session_id=row.session_id, phase=Phase(row.phase), reason=reason
            ),
        )
    )
