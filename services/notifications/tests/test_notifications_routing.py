"""The routing table (pure): which event reaches whom, on which channels, how urgently."""

from __future__ import annotations

import re

import pytest

from kap_notifications.domain.routing import (
    ROUTING_TABLE,
    RULES,
    EscalationKind,
    Priority,
    RoutingContext,
    Team,
    escalation_text,
    route,
    rule_for,
)
from kap_shared.events import Envelope, PatientReferred, PhaseAdvanced
from kap_shared.events.enums import Channel, Phase, ScreeningOutcome, Severity
from kap_shared.events.intake import PatientReferredData
from kap_shared.events.scheduling import PhaseAdvancedData
from kap_shared.testing import named_cases

from . import factories as f

SMS, IN_APP, EMAIL = Channel.SMS, Channel.IN_APP, Channel.EMAIL

SESSION = Team(prescriber_id="rx-session", therapist_id="th-session")
PATIENT = Team(prescriber_id="rx-plan", therapist_id="th-plan")
FULL = RoutingContext(
    session=SESSION,
    patient=PATIENT,
    site_prescribers=("rx-site-1", "rx-site-2"),
    site_nurses=("rn-1", "rn-2"),
)

# event, expected rule key, recipients with the full context
CASES: list[tuple[str, Envelope, str, tuple[str, ...]]] = [
    (
        "critical vitals",
        f.vitals_alert(Severity.CRITICAL),
        "vitals-critical",
        ("rx-session", "th-session"),
    ),
    (
        "warning vitals",
        f.vitals_alert(Severity.WARNING),
        "vitals-warning",
        ("rx-session", "th-session"),
    ),
    ("vitals resolved", f.vitals_resolved(), "vitals-resolved", ("rx-session", "th-session")),
    ("safety concern", f.safety_concern(), "safety-concern", ("rx-plan", "th-plan")),
    ("screening review", f.screened(), "screening-review", ("rx-site-1", "rx-site-2")),
    (
        "screening review, item 9",
        f.screened(reasons=("MBC-1",)),
        "screening-review-risk",
        ("rx-site-1", "rx-site-2", "th-plan"),
    ),
    ("plan created", f.plan_created(), "plan-created", ("th-ben", "rx-ada")),
    ("session booked", f.session_scheduled(), "session-scheduled", ("rx-session", "th-session")),
    ("session moved", f.session_rescheduled(), "session-rescheduled", ("rx-session", "th-session")),
    ("session cancelled", f.session_cancelled(), "session-cancelled", ("rx-session", "th-session")),
    ("integration overdue", f.integration_overdue("th-due"), "integration-overdue", ("th-due",)),
    ("observation due", f.observation_due(), "observation-due", ("rn-1", "rn-2")),
]


@pytest.mark.parametrize(("event", "key", "recipients"), named_cases(CASES))
def test_each_event_type_routes_by_its_table_row(
    event: Envelope, key: str, recipients: tuple[str, ...]
) -> None:
    message = route(event, FULL)

    assert message is not None
    assert message.rule is RULES[key]
    assert message.recipients == recipients
    assert message.priority is RULES[key].priority
    assert message.channels == RULES[key].channels


def test_every_table_row_is_exercised() -> None:
    # records' PMF rows are exercised in test_notifications_pmf_routing.py
    assert {case[2] for case in CASES} == {
        rule.key for rule in ROUTING_TABLE if not rule.key.startswith("pmf-")
    }


def test_priorities_channels_and_escalation_of_the_safety_rows() -> None:
    critical = RULES["vitals-critical"]
    assert (critical.priority, set(critical.channels)) == (Priority.STAT, {SMS, IN_APP})
    assert critical.escalation is EscalationKind.SITE_LEVELS
    assert (RULES["vitals-warning"].priority, RULES["vitals-warning"].channels) == (
        Priority.URGENT,
        (IN_APP,),
    )
    safety = RULES["safety-concern"]
    assert (safety.priority, set(safety.channels)) == (Priority.URGENT, {SMS, IN_APP})
    assert RULES["integration-overdue"].escalation is EscalationKind.SITE_COORDINATORS
    assert [r.key for r in ROUTING_TABLE if r.escalation and not r.key.startswith("pmf-")] == [
        "vitals-critical",
        "integration-overdue",
    ]


def test_priority_ranks_follow_fhir() -> None:
    ranks = [p.rank for p in (Priority.ROUTINE, Priority.URGENT, Priority.ASAP, Priority.STAT)]
    assert ranks == sorted(ranks) == [0, 1, 2, 3]


# -- nobody needs to know --------------------------------------------------------------------


@pytest.mark.parametrize(
    "event",
    [
        f.vitals_alert(Severity.INFO),
        f.screened(ScreeningOutcome.ELIGIBLE, ()),
        f.screened(ScreeningOutcome.INELIGIBLE, ("SCR-CI-ABS",)),
        f.screened(reviewed_by="rx-ada"),  # a decided review is news to nobody
        PatientReferred(
            producer="intake",
            site_id="site-a",
            patient_id="pt-1",
            correlation_id="ep-1",
            data=PatientReferredData(indications=["trd"]),
        ),
        PhaseAdvanced(
            producer="scheduling",
            site_id="site-a",
            patient_id="pt-1",
            correlation_id="ep-1",
            data=PhaseAdvancedData(plan_id="plan-1", to_phase=Phase.PREPARATION),
        ),
    ],
    ids=["info vitals", "eligible", "ineligible", "reviewed", "referred", "phase advanced"],
)
def test_events_nobody_needs_to_know_route_nowhere(event: Envelope) -> None:
    assert rule_for(event) is None
    assert route(event, FULL) is None


# -- fallbacks -------------------------------------------------------------------------------


def test_session_without_prescriber_takes_the_plans_prescriber() -> None:
    context = RoutingContext(session=Team(None, "th-session"), patient=PATIENT)
    message = route(f.vitals_alert(), context)
    assert message is not None
    assert message.recipients == ("rx-plan", "th-session")


def test_unknown_session_takes_the_patients_plan_team() -> None:
    message = route(f.vitals_alert(), RoutingContext(patient=PATIENT))
    assert message is not None
    assert message.recipients == ("rx-plan", "th-plan")


def test_critical_alert_with_no_known_team_goes_to_the_site_prescribers() -> None:
    message = route(f.vitals_alert(), RoutingContext(site_prescribers=("rx-site-1",)))
    assert message is not None
    assert message.recipients == ("rx-site-1",)


def _recipients(event: Envelope, context: RoutingContext) -> tuple[str, ...]:
    message = route(event, context)
    assert message is not None
    return message.recipients


def test_routine_session_news_with_no_known_team_goes_nowhere() -> None:
    context = RoutingContext(site_prescribers=("rx-site-1",))
    assert _recipients(f.session_cancelled(), context) == ()
    assert _recipients(f.vitals_resolved(), context) == ()


def test_safety_concern_without_a_plan_uses_the_session_team_then_site_prescribers() -> None:
    assert _recipients(f.safety_concern(), RoutingContext(session=SESSION)) == (
        "rx-session",
        "th-session",
    )
    only_site = RoutingContext(site_prescribers=("rx-site-1",))
    assert _recipients(f.safety_concern(), only_site) == ("rx-site-1",)


def test_observation_without_nurses_goes_to_the_sessions_therapist() -> None:
    message = route(f.observation_due(), RoutingContext(session=SESSION, patient=PATIENT))
    assert message is not None
    assert message.recipients == ("th-session",)
    assert _recipients(f.observation_due(), RoutingContext()) == ()


def test_screening_review_with_no_prescriber_known_goes_nowhere() -> None:
    assert _recipients(f.screened(), RoutingContext()) == ()


def test_critical_alert_with_nobody_known_still_calls_for_escalation() -> None:
    message = route(f.vitals_alert(), RoutingContext())
    assert message is not None
    assert (message.recipients, message.escalation) == ((), EscalationKind.SITE_LEVELS)


def test_same_clinician_as_prescriber_and_therapist_is_told_once() -> None:
    context = RoutingContext(session=Team("dr-both", "dr-both"))
    message = route(f.vitals_alert(), context)
    assert message is not None
    assert message.recipients == ("dr-both",)


# -- texts: ids, codes and numbers only --------------------------------------------------------

EMAIL_ADDRESS = re.compile(r"[\w.+-]+@[\w-]+\.[\w.]+")
DATE = re.compile(r"\b\d{4}-\d{2}-\d{2}\b|\b\d{1,2}/\d{1,2}/\d{2,4}\b|\b\d{1,2}:\d{2}\b")
PHONE = re.compile(r"\+?\d[\d ()-]{6,}\d")


@pytest.mark.parametrize("event", [c[1] for c in CASES], ids=[c[0] for c in CASES])
def test_messages_carry_no_phi(event: Envelope) -> None:
    message = route(event, FULL)
    assert message is not None
    for text in (message.title, message.body):
        assert not EMAIL_ADDRESS.search(text), text
        assert not DATE.search(text), text
        assert not PHONE.search(text), text
        assert "Zelphine" not in text  # VitalsAlert.message is free text: never copied
        assert "Quorrowitz" not in text


def test_critical_alert_text_names_ids_codes_and_numbers() -> None:
    message = route(f.vitals_alert(), FULL)
    assert message is not None
    assert message.title == "CRITICAL vitals alert"
    for part in ("sess-1", "pt-1", "bp_systolic 186", "threshold 180", "KET-MON-BP", "va-1"):
        assert part in message.body


def test_plan_message_names_ids_and_next_step() -> None:
    message = route(f.plan_created(), FULL)
    assert message is not None
    assert message.title == "New patient assigned"
    for part in ("pt-1", "plan-1", "ketamine_iv_induction", "6 dosing sessions", "preparation"):
        assert part in message.body


def test_escalation_text_marks_the_level() -> None:
    title, body = escalation_text("CRITICAL vitals alert", "Session s-1.", 2, 300)
    assert title == "ESCALATED (level 2): CRITICAL vitals alert"
    assert body == "Session s-1. Not acknowledged 300 s after the first notification."
