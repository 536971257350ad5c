"""Keep monitoring's view of baselines and sessions current from events.

A dosing session's monitoring window opens at `SessionCheckedIn` (with the
patient's screening baseline copied in) and closes at discharge or
`SessionCancelled`.
"""

from __future__ import annotations

from kap_shared.events import (
    PatientScreened,
    SessionCancelled,
    SessionCheckedIn,
    SessionRescheduled,
    SessionScheduled,
    TreatmentPlanCreated,
)
from kap_shared.messaging.errors import PermanentError
from kap_shared.messaging.unit_of_work import UnitOfWork
from kap_shared.projections import booked_session, planned

from ..adapters import store
from ..adapters.tables import (
    CANCELLED,
    CHECKED_IN,
    DISCHARGED,
    Baseline,
    MonitoredSession,
    Plan,
)
from .observations import cancel_bp_check


async def on_treatment_plan_created(event: TreatmentPlanCreated, uow: UnitOfWork) -> None:
    """The plan's route: every dose of its sessions must follow it (MON-DOSE-3)."""
    data = event.data
    if await uow.session.get(Plan, data.plan_id) is not None:
        return  # a repeated announcement changes nothing
    uow.session.add(Plan(**planned(event)))


async def on_patient_screened(event: PatientScreened, uow: UnitOfWork) -> None:
    """The baseline: vitals follow the latest screening; the measure totals are the
    pre-treatment ones (MBC-3 compares with the first baseline, so a re-screening
    does not overwrite them)."""
    data = event.data
    existing = await uow.session.get(Baseline, event.patient_id)
    baseline = existing or Baseline(
        patient_id=event.patient_id,
        site_id=event.site_id,
        screening_id=data.screening_id,
        route=data.route.value,
        phq9_total=data.baseline.phq9_total,
        gad7_total=data.baseline.gad7_total,
        bp_systolic=data.baseline.bp_systolic,
        bp_diastolic=data.baseline.bp_diastolic,
        heart_rate=data.baseline.heart_rate,
    )
    baseline.sqlmodel_update(
        {
            "site_id": event.site_id,
            "correlation_id": event.correlation_id,
            "screening_id": data.screening_id,
            "route": data.route.value,
            **data.baseline.model_dump(
                exclude={"phq9_item9"}
                | ({"phq9_total", "gad7_total", "pcl5_total"} if existing is not None else set())
            ),
            "updated_at": event.occurred_at,
        }
    )
    uow.session.add(baseline)


async def _locked(uow: UnitOfWork, session_id: str) -> MonitoredSession | None:
    await store.lock_sessions(uow.session, [session_id])
    return await uow.session.get(MonitoredSession, session_id, populate_existing=True)


async def on_session_scheduled(event: SessionScheduled, uow: UnitOfWork) -> None:
    data = event.data
    session = await _locked(uow, data.session_id)
    if session is not None:
        return  # a repeated SessionScheduled for the same session changes nothing
    uow.session.add(MonitoredSession(**booked_session(event), correlation_id=event.correlation_id))


async def on_session_rescheduled(event: SessionRescheduled, uow: UnitOfWork) -> None:
    session = await _locked(uow, event.data.session_id)
    if session is None:
        raise PermanentError(f"reschedule of unknown session {event.data.session_id}")
    session.starts_at, session.ends_at = event.data.starts_at, event.data.ends_at
    uow.session.add(session)


async def on_session_checked_in(event: SessionCheckedIn, uow: UnitOfWork) -> None:
    session = await _locked(uow, event.data.session_id)
    if session is None:
        # Scheduling always emits SessionScheduled first, keyed by patient, so this
        # is an inconsistency worth a dead letter, not a silent drop.
        raise PermanentError(f"check-in for unknown session {event.data.session_id}")
    if session.status in (DISCHARGED, CANCELLED):
        return  # a late check-in never reopens a closed window
    session.status = CHECKED_IN
    session.checked_in_at = event.data.checked_in_at
    baseline = await uow.session.get(Baseline, session.patient_id)
    if baseline is not None:
        session.baseline_bp_systolic = baseline.bp_systolic
        session.baseline_bp_diastolic = baseline.bp_diastolic
        session.baseline_heart_rate = baseline.heart_rate
    uow.session.add(session)


async def on_session_cancelled(event: SessionCancelled, uow: UnitOfWork) -> None:
    session = await _locked(uow, event.data.session_id)
    if session is None:
        raise PermanentError(f"cancellation of unknown session {event.data.session_id}")
    if session.status == DISCHARGED:
        return  # the record of a completed session stays as it is
    session.status = CANCELLED
    uow.session.add(session)
    await cancel_bp_check(uow, session.session_id)
