"""Routing table: which event reaches whom, on which channel, how urgently.

Messages carry ids, codes and numbers only (no PHI): a clinician opens the
patient in the clinic's own tools.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from kap_shared.events import Envelope, TreatmentPlanCreated
from kap_shared.events.enums import Channel


class Priority(StrEnum):
    """FHIR CommunicationRequest priorities (clinical rulebook section 5.2)."""

    ROUTINE = "routine"
    URGENT = "urgent"
    ASAP = "asap"
    STAT = "stat"


@dataclass(frozen=True)
class Delivery:
    recipient_id: str
    channel: Channel
    priority: Priority
    title: str
    body: str


def route(event: Envelope) -> list[Delivery]:
    """The deliveries an event calls for (empty when nobody needs to know)."""
    if isinstance(event, TreatmentPlanCreated):
        data = event.data
        title = "New patient assigned"
        body = (
            f"Patient {event.patient_id} starts plan {data.plan_id} ({data.protocol}, "
            f"{data.planned_dosing_sessions} dosing sessions). Next: book the first "
            "preparation session."
        )
        return [
            Delivery(data.therapist_id, Channel.IN_APP, Priority.ROUTINE, title, body),
            Delivery(data.prescriber_id, Channel.IN_APP, Priority.ROUTINE, title, body),
        ]
    return []
