"""Treatment plans from PatientScreened, through scheduling's consumer path
(decode -> inbox guard -> handler -> outbox, one transaction)."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from kap_shared.events import (
    ConsentRecorded,
    Envelope,
    PatientReferred,
    PatientScreened,
    decode,
    new_id,
)
from kap_shared.events.enums import ConsentScope, Route, ScreeningOutcome
from kap_shared.events.intake import (
    ConsentRecordedData,
    PatientReferredData,
    PatientScreenedData,
)
from kap_shared.events.topics import SCHEDULING_EVENTS
from kap_shared.testing import rows, token
from kap_shared.testing_app import screening_baseline
from kap_shared.testing_ops import assert_error

Deliver = Callable[[Envelope], bool]
Outbox = Callable[[], list[dict[str, Any]]]
AddClinician = Callable[..., Any]

BASELINE = screening_baseline(
    phq9_total=18, gad7_total=12, pcl5_total=None, bp_systolic=132, bp_diastolic=84, heart_rate=76
)


def screened(
    outcome: ScreeningOutcome = ScreeningOutcome.ELIGIBLE,
    *,
    patient_id: str = "pt-001",
    site_id: str = "site-a",
    route: Route = Route.IV,
    screening_id: str = "scr-001",
    correlation_id: str = "episode-001",
    reviewed_by: str | None = None,
) -> PatientScreened:
    reasons = {
        ScreeningOutcome.ELIGIBLE: [],
        ScreeningOutcome.NEEDS_REVIEW: ["SPR-PRE-5"],
        ScreeningOutcome.INELIGIBLE: ["SCR-CI-ABS"],
    }[outcome]
    return PatientScreened(
        producer="intake",
        site_id=site_id,
        patient_id=patient_id,
        correlation_id=correlation_id,
        data=PatientScreenedData(
            screening_id=screening_id,
            outcome=outcome,
            route=route,
            indications=["trd"],
            contraindications=[],
            reasons=reasons,
            baseline=BASELINE,
            reviewed_by=reviewed_by,
        ),
    )


# The stored plan of the eligible IV screening `screened()` once its care team is known:
# (patient, status, phase, prescriber, therapist, protocol, planned dosing, screening).
ACTIVE_IV_PLAN = (
    "pt-001",
    "active",
    "preparation",
    "rx-ada",
    "th-ben",
    "ketamine_iv_induction",
    6,
    "scr-001",
)


def plans(db: Path) -> list[tuple[Any, ...]]:
    return rows(
        db,
        "SELECT patient_id, status, phase, prescriber_id, therapist_id, protocol, "
        "planned_dosing_sessions, screening_id FROM plans ORDER BY created_at",
    )


# -- eligible: plan created and staffed ----------------------------------------------


@pytest.mark.usefixtures("staffed")
def test_eligible_creates_an_active_plan_in_preparation(
    deliver: Deliver, db: Path, outbox: Outbox
) -> None:
    event = screened()

    assert deliver(event) is True

    assert plans(db) == [ACTIVE_IV_PLAN]
    created, advanced = outbox()
    assert created["event_type"] == "TreatmentPlanCreated"
    assert advanced["event_type"] == "PhaseAdvanced"
    plan_id = created["data"]["plan_id"]
    assert created["data"] == {
        "plan_id": plan_id,
        "route": "iv",
        "protocol": "ketamine_iv_induction",
        "prescriber_id": "rx-ada",
        "therapist_id": "th-ben",
        "planned_dosing_sessions": 6,
    }
    assert advanced["data"] == {"plan_id": plan_id, "from_phase": None, "to_phase": "preparation"}
    for out in (created, advanced):
        assert out["producer"] == "scheduling"
        assert out["causation_id"] == str(event.event_id)
        assert out["correlation_id"] == event.correlation_id == "episode-001"
        assert (out["patient_id"], out["site_id"]) == ("pt-001", "site-a")
        assert decode(SCHEDULING_EVENTS, out).event_type == out["event_type"]


@pytest.mark.usefixtures("staffed")
def test_plan_events_are_outbox_rows_on_the_scheduling_topic_keyed_by_patient(
    deliver: Deliver, db: Path
) -> None:
    deliver(screened())
    assert rows(db, "SELECT event_type, topic, key, published_at FROM outbox_messages") == [
        ("TreatmentPlanCreated", SCHEDULING_EVENTS, "pt-001", None),
        ("PhaseAdvanced", SCHEDULING_EVENTS, "pt-001", None),
    ]


@pytest.mark.usefixtures("staffed")
def test_processed_event_is_recorded_in_the_inbox(deliver: Deliver, db: Path) -> None:
    event = screened()
    deliver(event)
    assert rows(db, "SELECT consumer_group, event_id, event_type FROM inbox_messages") == [
        ("scheduling", str(event.event_id), "PatientScreened")
    ]


@pytest.mark.parametrize(
    ("route", "protocol", "sessions"),
    [
        (Route.INTRANASAL_ESKETAMINE, "esketamine_trd", 12),
        (Route.SUBLINGUAL, "kap_sublingual", 6),
        (Route.IM, "ketamine_iv_induction", 6),
    ],
)
@pytest.mark.usefixtures("staffed")
def test_plan_protocol_follows_the_route(
    deliver: Deliver, outbox: Outbox, route: Route, protocol: str, sessions: int
) -> None:
    deliver(screened(route=route))
    created = outbox()[0]["data"]
    assert (created["route"], created["protocol"], created["planned_dosing_sessions"]) == (
        route.value,
        protocol,
        sessions,
    )


@pytest.mark.usefixtures("staffed")
def test_redelivered_event_creates_one_plan_only(
    deliver: Deliver, db: Path, outbox: Outbox
) -> None:
    event = screened()

    assert deliver(event) is True
    assert deliver(event) is False

    assert len(plans(db)) == 1
    assert len(outbox()) == 2
    assert len(rows(db, "SELECT * FROM inbox_messages")) == 1


@pytest.mark.usefixtures("staffed")
def test_a_second_eligible_screening_keeps_the_current_plan(
    deliver: Deliver, db: Path, outbox: Outbox
) -> None:
    deliver(screened(screening_id="scr-001"))
    assert deliver(screened(screening_id="scr-002")) is True
    assert [p[7] for p in plans(db)] == ["scr-001"]
    assert len(outbox()) == 2


@pytest.mark.parametrize("outcome", [ScreeningOutcome.NEEDS_REVIEW, ScreeningOutcome.INELIGIBLE])
@pytest.mark.usefixtures("staffed")
def test_needs_review_or_ineligible_creates_no_plan(
    deliver: Deliver, db: Path, outbox: Outbox, outcome: ScreeningOutcome
) -> None:
    assert deliver(screened(outcome)) is True  # processed, with no effect
    assert plans(db) == []
    assert outbox() == []


@pytest.mark.usefixtures("staffed")
def test_needs_review_then_approved_creates_the_plan(
    deliver: Deliver, db: Path, outbox: Outbox
) -> None:
    deliver(screened(ScreeningOutcome.NEEDS_REVIEW))
    approved = screened(ScreeningOutcome.ELIGIBLE, reviewed_by="rx-ada")

    deliver(approved)

    assert [p[1] for p in plans(db)] == ["active"]
    assert {e["causation_id"] for e in outbox()} == {str(approved.event_id)}


@pytest.mark.usefixtures("staffed")
def test_ineligible_after_a_plan_suspends_it(
    client: TestClient, deliver: Deliver, db: Path
) -> None:
    deliver(screened(screening_id="scr-001"))
    deliver(screened(ScreeningOutcome.INELIGIBLE, screening_id="scr-002"))

    assert [p[1] for p in plans(db)] == ["suspended"]
    body = client.get("/patients/pt-001/plan", headers=token("th-ben", "therapist", ["site-a"]))
    assert body.json()["status"] == "suspended"
    assert "suspended" in body.json()["next_action"].lower()


@pytest.mark.usefixtures("staffed")
def test_events_the_service_does_not_handle_are_ignored(deliver: Deliver, db: Path) -> None:
    referred = PatientReferred(
        producer="intake",
        site_id="site-a",
        patient_id="pt-001",
        correlation_id="episode-001",
        data=PatientReferredData(indications=["trd"]),
    )
    assert deliver(referred) is False
    assert rows(db, "SELECT * FROM inbox_messages") == []


# -- no care team yet ------------------------------------------------------------------


@pytest.mark.usefixtures("sites")
def test_no_care_team_at_the_site_leaves_the_plan_waiting_without_events(
    deliver: Deliver, add_clinician: AddClinician, db: Path, outbox: Outbox
) -> None:
    add_clinician("rx-ada", "prescriber", ["site-a"])
    add_clinician("th-far", "therapist", ["site-b"])  # a therapist, but at another site

    assert deliver(screened()) is True

    assert plans(db) == [
        ("pt-001", "awaiting_care_team", None, None, None, "ketamine_iv_induction", 6, "scr-001")
    ]
    assert outbox() == []


@pytest.fixture
def waiting(sites: list[str], deliver: Deliver, add_clinician: AddClinician) -> PatientScreened:
    """pt-001's plan waiting for its care team: site-a has a prescriber but no therapist
    yet. The screening that made the plan."""
    add_clinician("rx-ada", "prescriber", ["site-a"])
    event = screened()
    deliver(event)
    return event


def test_adding_the_missing_clinician_staffs_the_waiting_plan(
    waiting: PatientScreened, add_clinician: AddClinician, db: Path, outbox: Outbox
) -> None:
    add_clinician("nu-cal", "nurse", ["site-a"])  # not a care-team role
    assert [p[1] for p in plans(db)] == ["awaiting_care_team"]
    assert outbox() == []

    add_clinician("th-ben", "therapist", ["site-a"])

    assert plans(db) == [ACTIVE_IV_PLAN]
    created, advanced = outbox()
    assert [created["event_type"], advanced["event_type"]] == [
        "TreatmentPlanCreated",
        "PhaseAdvanced",
    ]
    assert advanced["data"]["from_phase"] is None
    assert advanced["data"]["to_phase"] == "preparation"
    for out in (created, advanced):
        assert out["causation_id"] == str(waiting.event_id)
        assert out["correlation_id"] == waiting.correlation_id


@pytest.mark.usefixtures("waiting")
def test_a_clinician_at_another_site_does_not_staff_the_waiting_plan(
    add_clinician: AddClinician, db: Path, outbox: Outbox
) -> None:
    add_clinician("th-far", "therapist", ["site-b"])
    assert [p[1] for p in plans(db)] == ["awaiting_care_team"]
    assert outbox() == []


@pytest.mark.usefixtures("sites")
def test_waiting_plans_are_staffed_in_order_and_spread_over_the_team(
    deliver: Deliver, add_clinician: AddClinician, db: Path, outbox: Outbox
) -> None:
    add_clinician("rx-ada", "prescriber", ["site-a"])
    add_clinician("rx-abe", "prescriber", ["site-a"])
    first = screened(patient_id="pt-1", screening_id="scr-1", correlation_id="ep-1")
    second = screened(patient_id="pt-2", screening_id="scr-2", correlation_id="ep-2")
    deliver(first)
    deliver(second)
    assert outbox() == []

    add_clinician("th-ben", "therapist", ["site-a"])

    # The first plan's activation counts towards the load when the second is staffed.
    assert [(p[0], p[1], p[3], p[4]) for p in plans(db)] == [
        ("pt-1", "active", "rx-abe", "th-ben"),
        ("pt-2", "active", "rx-ada", "th-ben"),
    ]
    events = outbox()
    assert [(e["event_type"], e["patient_id"]) for e in events] == [
        ("TreatmentPlanCreated", "pt-1"),
        ("PhaseAdvanced", "pt-1"),
        ("TreatmentPlanCreated", "pt-2"),
        ("PhaseAdvanced", "pt-2"),
    ]
    assert [e["causation_id"] for e in events] == [str(first.event_id)] * 2 + [
        str(second.event_id)
    ] * 2
    assert [e["correlation_id"] for e in events] == ["ep-1", "ep-1", "ep-2", "ep-2"]


# -- care-team load balancing ------------------------------------------------------------


@pytest.mark.usefixtures("sites")
def test_each_new_plan_goes_to_the_least_loaded_clinicians(
    deliver: Deliver, add_clinician: AddClinician, db: Path
) -> None:
    add_clinician("rx-ada", "prescriber", ["site-a"])
    add_clinician("th-ben", "therapist", ["site-a"])
    add_clinician("th-bea", "therapist", ["site-a", "site-b"])

    for n in range(3):
        deliver(screened(patient_id=f"pt-{n}", screening_id=f"scr-{n}", correlation_id=new_id()))

    # Ties go to the lower id: th-bea, then th-ben (now less loaded), then th-bea again.
    assert [(p[0], p[3], p[4]) for p in plans(db)] == [
        ("pt-0", "rx-ada", "th-bea"),
        ("pt-1", "rx-ada", "th-ben"),
        ("pt-2", "rx-ada", "th-bea"),
    ]


# -- GET /patients/{id}/plan -----------------------------------------------------------------


@pytest.mark.usefixtures("staffed")
def test_get_plan_returns_phase_and_next_action(
    client: TestClient, deliver: Deliver, outbox: Outbox
) -> None:
    deliver(screened())
    deliver(
        ConsentRecorded(
            producer="intake",
            site_id="site-a",
            patient_id="pt-001",
            correlation_id="episode-001",
            data=ConsentRecordedData(consent_id="c-1", scope=ConsentScope.TREATMENT, granted=True),
        )
    )

    response = client.get("/patients/pt-001/plan", headers=token("th-ben", "therapist", ["site-a"]))

    assert response.status_code == 200
    body = response.json()
    assert body["plan_id"] == outbox()[0]["data"]["plan_id"]
    assert (body["status"], body["phase"]) == ("active", "preparation")
    assert (body["prescriber_id"], body["therapist_id"]) == ("rx-ada", "th-ben")
    assert body["protocol"] == "ketamine_iv_induction"
    assert body["sessions"] == []
    assert body["next_action"] == "Book preparation session 1 of 2 with th-ben."


@pytest.mark.usefixtures("staffed")
def test_get_plan_without_treatment_consent_says_to_record_it(
    client: TestClient, deliver: Deliver
) -> None:
    deliver(screened())
    body = client.get("/patients/pt-001/plan", headers=token("th-ben", "therapist", ["site-a"]))
    assert body.json()["next_action"] == (
        "The patient has no treatment consent on file; record it at intake first."
    )


@pytest.mark.usefixtures("sites")
def test_get_plan_awaiting_care_team_says_what_is_missing(
    client: TestClient, deliver: Deliver
) -> None:
    deliver(screened())
    body = client.get(
        "/patients/pt-001/plan", headers=token("co-1", "coordinator", ["site-a"])
    ).json()
    assert (body["status"], body["phase"]) == ("awaiting_care_team", None)
    assert "prescriber" in body["next_action"]
    assert "therapist" in body["next_action"]


def test_get_plan_404_when_the_patient_has_none(client: TestClient) -> None:
    response = client.get(
        f"/patients/{uuid.uuid4()}/plan", headers=token("th-ben", "therapist", ["site-a"])
    )
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"


@pytest.mark.usefixtures("staffed")
@pytest.mark.parametrize(
    ("headers", "status", "code"),
    [
        (token("th-zed", "therapist", ["site-b"]), 403, "forbidden"),
        ({}, 401, "unauthenticated"),
        (token("pump-1", "device", ["site-a"]), 403, "forbidden"),
    ],
    ids=["clinician of another site", "no token", "device"],
)
def test_get_plan_refused(
    client: TestClient, deliver: Deliver, headers: dict[str, str], status: int, code: str
) -> None:
    deliver(screened())
    response = client.get("/patients/pt-001/plan", headers=headers)
    assert_error(response, status, code)
