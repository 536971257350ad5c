"""Safety holds: opened by a SafetyConcernRaised (in-session MBC-1) or by a re-screening
with MBC-1 of a patient who has a plan; a prescriber clears one after a risk
assessment (SCH-HOLD-1/2)."""

from __future__ import annotations

from datetime import datetime

from kap_shared.auth import Principal
from kap_shared.events import new_id
from kap_shared.events.enums import Severity
from kap_shared.http.errors import NotFound, RuleViolation
from kap_shared.logging import get_logger
from kap_shared.messaging.unit_of_work import UnitOfWork

from ..adapters import repository as repo
from ..adapters.tables import Hold, Patient
from ..domain import rules as r
from ..domain.commands import ClearHold
from ..domain.model import HoldStatus
from ..domain.rules import SchedulingRules

log = get_logger(__name__)


def open_hold(
    uow: UnitOfWork,
    rules: SchedulingRules,
    *,
    patient_id: str,
    site_id: str,
    source: str,
    value: float,
    severity: Severity,
    raised_at: datetime,
    source_event_id: str,
) -> bool:
    """Put the patient's dosing on hold (SCH-HOLD-1), if the severity holds at the site."""
    if severity not in rules.hold_severities:
        log.info("hold.not_raised", severity=severity.value, source=source)
        return False
    uow.session.add(
        Hold(
            hold_id=new_id(),
            patient_id=patient_id,
            site_id=site_id,
            source=source,
            value=value,
            severity=severity.value,
            raised_at=raised_at,
            source_event_id=source_event_id,
            status=HoldStatus.OPEN.value,
        )
    )
    log.info("hold.raised", source=source, severity=severity.value)
    return True


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
