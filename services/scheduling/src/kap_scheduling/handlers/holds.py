"""Safety holds: a prescriber clears one after a risk assessment (SCH-HOLD-1/2)."""

from __future__ import annotations

from datetime import datetime

from kap_shared.auth import Principal
from kap_shared.http.errors import NotFound, RuleViolation
from kap_shared.messaging.unit_of_work import UnitOfWork

from ..adapters import repository as repo
from ..adapters.tables import Hold, Patient
from ..domain import rules as r
from ..domain.commands import ClearHold
from ..domain.model import HoldStatus


async def clear_hold(
    uow: UnitOfWork,
    patient: Patient,
    hold_id: str,
    cmd: ClearHold,
    by: Principal,
    now: datetime,
) -> Hold:
    hold = await uow.session.get(Hold, hold_id)
    if hold is None or hold.patient_id != patient.patient_id:
        raise NotFound("hold", hold_id)
    if hold.status == HoldStatus.CLEARED.value:
        site = await repo.site_info(uow.session, hold.site_id)
        cleared = f" by {hold.cleared_by} on {site.day(hold.cleared_at)}" if hold.cleared_at else ""
        raise RuleViolation(r.HOLD_CLEARED, f"the hold was already cleared{cleared}")
    hold.status = HoldStatus.CLEARED.value
    hold.cleared_by, hold.cleared_at, hold.clear_reason = by.sub, now, cmd.reason
    uow.session.add(hold)
    await uow.commit()
    return hold
