"""What scheduling does with other services' events (consumer group `scheduling`):
consent from intake, safety concerns and discharge from monitoring. Each runs in
the consumer's unit of work (inbox guard, one transaction); none commits itself."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from kap_shared.events import ConsentRecorded, DischargeCleared, SafetyConcernRaised
from kap_shared.logging import get_logger
from kap_shared.messaging.unit_of_work import UnitOfWork
from kap_shared.rules import SiteRules

from ..adapters.tables import Consent, TreatmentSession
from ..domain.rules import SchedulingRules
from .holds import open_hold
from .plans import remember_patient

log = get_logger(__name__)


async def on_consent_recorded(event: ConsentRecorded, uow: UnitOfWork) -> None:
    """The latest decision per scope wins; withdrawal is `granted: false`."""
    await remember_patient(
        uow, event.patient_id, event.site_id, event.correlation_id, at=event.occurred_at
    )
    scope = event.data.scope.value
    consent = await uow.session.get(Consent, (event.patient_id, scope))
    if consent is not None and consent.recorded_at > event.occurred_at:
        log.info("consent.older_decision_ignored", scope=scope)
        return
    if consent is None:
        consent = Consent(
            patient_id=event.patient_id,
            scope=scope,
            consent_id=event.data.consent_id,
            granted=event.data.granted,
            recorded_at=event.occurred_at,
            source_event_id=str(event.event_id),
        )
    consent.consent_id, consent.granted = event.data.consent_id, event.data.granted
    consent.recorded_at, consent.source_event_id = event.occurred_at, str(event.event_id)
    uow.session.add(consent)


def on_safety_concern(
    site_rules: SiteRules[SchedulingRules],
) -> Callable[[SafetyConcernRaised, UnitOfWork], Awaitable[None]]:
    async def handle(event: SafetyConcernRaised, uow: UnitOfWork) -> None:
        """Put the patient's future dosing on hold until a prescriber clears it."""
        await remember_patient(
            uow, event.patient_id, event.site_id, event.correlation_id, at=event.occurred_at
        )
        open_hold(
            uow,
            site_rules.for_site(event.site_id),
            patient_id=event.patient_id,
            site_id=event.site_id,
            source=event.data.source,
            value=event.data.value,
            severity=event.data.severity,
            raised_at=event.occurred_at,
            source_event_id=str(event.event_id),
        )

    return handle


async def on_discharge_cleared(event: DischargeCleared, uow: UnitOfWork) -> None:
    """Monitoring cleared the patient: the dosing session may now be completed."""
    row = await uow.session.get(TreatmentSession, event.data.session_id)
    if row is None or row.patient_id != event.patient_id:
        # Not a session scheduling booked for this patient: nothing it gates.
        log.warning("discharge.unknown_session", session_id=event.data.session_id)
        return
    row.discharge_cleared_at = event.data.cleared_at
    row.discharge_event_id = str(event.event_id)
    uow.session.add(row)
