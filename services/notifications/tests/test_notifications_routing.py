"""The routing table (pure): which event reaches whom, on which channel."""

from __future__ import annotations

import re

from kap_notifications.domain.routing import Delivery, Priority, route
from kap_shared.events import PatientReferred, PhaseAdvanced, TreatmentPlanCreated
from kap_shared.events.enums import Channel, Phase, Route
from kap_shared.events.intake import PatientReferredData
from kap_shared.events.scheduling import PhaseAdvancedData, TreatmentPlanCreatedData

PLAN_CREATED = TreatmentPlanCreated(
    producer="scheduling",
    site_id="site-a",
    patient_id="pt-7f3a",
    correlation_id="episode-9",
    causation_id="screened-1",
    data=TreatmentPlanCreatedData(
        plan_id="plan-42",
        route=Route.INTRANASAL_ESKETAMINE,
        protocol="esketamine_trd",
        prescriber_id="rx-ada",
        therapist_id="th-ben",
        planned_dosing_sessions=12,
    ),
)

EMAIL = re.compile(r"[\w.+-]+@[\w-]+\.[\w.]+")
DATE = re.compile(r"\b\d{4}-\d{2}-\d{2}\b|\b\d{1,2}/\d{1,2}/\d{2,4}\b")
PHONE = re.compile(r"\+?\d[\d ()-]{6,}\d")


def test_treatment_plan_created_goes_in_app_to_therapist_and_prescriber() -> None:
    deliveries = route(PLAN_CREATED)

    assert [(d.recipient_id, d.channel, d.priority) for d in deliveries] == [
        ("th-ben", Channel.IN_APP, Priority.ROUTINE),
        ("rx-ada", Channel.IN_APP, Priority.ROUTINE),
    ]
    assert all(isinstance(d, Delivery) for d in deliveries)


def test_treatment_plan_message_names_ids_and_next_step() -> None:
    [first, second] = route(PLAN_CREATED)
    assert first.title == second.title == "New patient assigned"
    assert first.body == second.body
    assert "pt-7f3a" in first.body  # the pseudonymous id, for the clinic's own tools
    assert "plan-42" in first.body
    assert "esketamine_trd" in first.body
    assert "12 dosing sessions" in first.body
    assert "preparation session" in first.body


def test_treatment_plan_message_carries_no_phi() -> None:
    for delivery in route(PLAN_CREATED):
        for text in (delivery.title, delivery.body):
            assert not EMAIL.search(text), text
            assert not DATE.search(text), text
            assert not PHONE.search(text), text
            # Only ids and codes from the event itself, no other identifiers.
            words = set(re.findall(r"[a-z]+-[\w-]+", text))
            assert words <= {"pt-7f3a", "plan-42"}, words


def test_events_nobody_needs_to_know_route_nowhere() -> None:
    referred = PatientReferred(
        producer="intake",
        site_id="site-a",
        patient_id="pt-7f3a",
        correlation_id="episode-9",
        data=PatientReferredData(indications=["trd"]),
    )
    advanced = PhaseAdvanced.caused_by(
        PLAN_CREATED,
        producer="scheduling",
        data=PhaseAdvancedData(plan_id="plan-42", to_phase=Phase.PREPARATION),
    )
    assert route(referred) == []
    assert route(advanced) == []
