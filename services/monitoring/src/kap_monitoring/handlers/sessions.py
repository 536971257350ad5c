"""Keep monitoring's view of baselines and sessions current from events."""

from __future__ import annotations

from kap_shared.events import PatientScreened, SessionCheckedIn, SessionScheduled
from kap_shared.messaging.errors import PermanentError
from kap_shared.messaging.unit_of_work import UnitOfWork

from ..adapters.tables import Baseline, MonitoredSession


async def on_patient_screened(event: PatientScreened, uow: UnitOfWork) -> None:
    data = event.data
    baseline = await uow.session.get(Baseline, event.patient_id) or Baseline(
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
            "screening_id": data.screening_id,
            "route": data.route.value,
            **data.baseline.model_dump(exclude={"phq9_item9"}),
            "updated_at": event.occurred_at,
        }
    )
    uow.session.add(baseline)


async def on_session_scheduled(event: SessionScheduled, uow: UnitOfWork) -> None:
    data = event.data
    session = await uow.session.get(MonitoredSession, data.session_id) or MonitoredSession(
        session_id=data.session_id,
        patient_id=event.patient_id,
        site_id=event.site_id,
        plan_id=data.plan_id,
        phase=data.phase.value,
        starts_at=data.starts_at,
        ends_at=data.ends_at,
        therapist_id=data.therapist_id,
        prescriber_id=data.prescriber_id,
    )
    uow.session.add(session)


async def on_session_checked_in(event: SessionCheckedIn, uow: UnitOfWork) -> None:
    session = await uow.session.get(MonitoredSession, event.data.session_id)
    if session is None:
        # Scheduling always emits SessionScheduled first, keyed by patient, so this
        # is an inconsistency worth a dead letter, not a silent drop.
        raise PermanentError(f"check-in for unknown session {event.data.session_id}")
    session.status = "checked_in"
    session.checked_in_at = event.data.checked_in_at
    uow.session.add(session)
