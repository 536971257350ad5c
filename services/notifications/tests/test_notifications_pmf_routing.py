"""SPR-PMF-1 rows of the routing table (records' events): PmfReminder to the session's
prescriber and the site's coordinators (routine), PmfOverdue the same people, urgent,
escalating through the site's levels. Texts hold ids, codes and numbers only."""

from __future__ import annotations

from datetime import UTC, datetime

from kap_notifications.domain import routing
from kap_shared.events import PmfOverdue, PmfReminder
from kap_shared.events.enums import Channel
from kap_shared.events.records import PmfOverdueData, PmfReminderData

DUE = datetime(2026, 12, 14, 14, 0, tzinfo=UTC)
CONTEXT = routing.RoutingContext(
    session=routing.Team(prescriber_id="rx-session", therapist_id="th-session"),
    patient=routing.Team(prescriber_id="rx-plan", therapist_id="th-plan"),
    site_coordinators=("co-1", "co-2"),
)
ENVELOPE = {
    "producer": "records",
    "site_id": "site-a",
    "patient_id": "pt-1",
    "correlation_id": "ep-1",
}


def reminder() -> PmfReminder:
    return PmfReminder(
        **ENVELOPE,
        data=PmfReminderData(
            pmf_id="pmf-1",
            session_id="s-1",
            due_by=DUE,
            days_left=4,
            missing_fields=["bp_40_min"],
        ),
    )


def overdue() -> PmfOverdue:
    return PmfOverdue(
        **ENVELOPE,
        data=PmfOverdueData(
            pmf_id="pmf-1", session_id="s-1", due_by=DUE, missing_fields=["bp_40_min"]
        ),
    )


def test_SPR_PMF_1_reminder_goes_to_the_prescriber_and_coordinators_routine() -> None:
    message = routing.route(reminder(), CONTEXT)
    assert message is not None
    assert message.rule is routing.RULES["pmf-reminder"]
    assert message.recipients == ("rx-session", "co-1", "co-2")
    assert message.priority is routing.Priority.ROUTINE
    assert message.escalation is None
    assert Channel.IN_APP in message.channels
    assert "pmf-1" in message.body
    assert "bp_40_min" in message.body
    assert "4 days" in message.body


def test_SPR_PMF_1_overdue_is_urgent_and_escalates_through_the_site_levels() -> None:
    message = routing.route(overdue(), CONTEXT)
    assert message is not None
    assert message.rule is routing.RULES["pmf-overdue"]
    assert message.priority is routing.Priority.URGENT
    assert message.escalation is routing.EscalationKind.SITE_LEVELS
    assert message.recipients == ("rx-session", "co-1", "co-2")
    assert "SPR-PMF-1" in message.body


def test_SPR_PMF_1_without_a_session_team_the_plan_prescriber_then_coordinators() -> None:
    context = routing.RoutingContext(patient=CONTEXT.patient, site_coordinators=("co-1",))
    message = routing.route(reminder(), context)
    assert message is not None
    assert message.recipients == ("rx-plan", "co-1")


def test_SPR_PMF_1_rows_are_one_block_of_the_table() -> None:
    keys = [rule.key for rule in routing.ROUTING_TABLE]
    start = keys.index("pmf-reminder")
    assert keys[start : start + 2] == ["pmf-reminder", "pmf-overdue"]
