"""POST /patients/{id}/measures: OutcomeRecorded against the screening baseline
(MBC-3) and SafetyConcernRaised on PHQ-9 item 9 (MBC-1)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from fastapi.testclient import TestClient
from monitoring_flows import MBC_1_CONCERN

from .conftest import (
    SITE,
    Counts,
    Deliver,
    Headers,
    Outbox,
    assert_error,
    scheduled,
    screened,
)


def post(client: TestClient, headers: Headers, body: dict[str, Any], patient: str = "pt-1") -> Any:
    return client.post(f"/patients/{patient}/measures", json=body, headers=headers)


@pytest.fixture
def baseline(deliver: Deliver) -> None:
    deliver(screened(phq9_total=20, gad7_total=12, pcl5_total=None))


@pytest.mark.usefixtures("baseline")
def test_PHQ9_outcome_against_the_screening_baseline(
    client: TestClient, therapist: Headers, outbox: Outbox
) -> None:
    response = post(
        client, therapist, {"instrument": "PHQ-9", "items": [2, 2, 1, 1, 1, 1, 1, 1, 0]}
    )
    assert response.status_code == 201, response.text
    body = response.json()
    assert (body["total"], body["band"], body["baseline_total"]) == (10, "moderate", 20)
    assert (body["change_pct"], body["response"], body["remission"]) == (-50.0, True, False)
    assert body["safety_concern"] is None
    [event] = outbox()
    assert event["event_type"] == "OutcomeRecorded"
    assert event["data"] == {
        "instrument": "PHQ-9",
        "total": 10.0,
        "band": "moderate",
        "baseline_total": 20.0,
        "change_pct": -50.0,
        "response": True,
        "remission": False,
        "follow_up": [],
    }
    assert (event["producer"], event["site_id"], event["correlation_id"]) == (
        "monitoring",
        SITE,
        "episode-pt-1",
    )


@pytest.mark.usefixtures("baseline")
def test_MBC_1_item_9_of_1_raises_a_safety_concern_whatever_the_total(
    client: TestClient, nurse: Headers, outbox: Outbox
) -> None:
    response = post(client, nurse, {"instrument": "PHQ-9", "items": [0, 0, 1, 0, 0, 1, 0, 1, 1]})
    body = response.json()
    assert (body["total"], body["remission"], body["safety_concern"]) == (4, True, "critical")
    outcome, concern = outbox()
    assert concern["event_type"] == "SafetyConcernRaised"
    assert concern["data"] == MBC_1_CONCERN
    assert concern["causation_id"] == outcome["event_id"]


@pytest.mark.usefixtures("baseline")
def test_MBC_1_item_9_of_0_raises_nothing(
    client: TestClient, nurse: Headers, outbox: Outbox
) -> None:
    post(client, nurse, {"instrument": "PHQ-9", "items": [3, 3, 3, 3, 3, 3, 3, 3, 0]})
    assert [e["event_type"] for e in outbox()] == ["OutcomeRecorded"]


@pytest.mark.usefixtures("baseline")
def test_GAD7_and_PCL5_use_their_own_baselines(
    client: TestClient, nurse: Headers, outbox: Outbox
) -> None:
    gad = post(client, nurse, {"instrument": "GAD-7", "items": [1, 1, 1, 1, 1, 1, 0]}).json()
    assert (gad["baseline_total"], gad["change_pct"], gad["response"]) == (12, -50.0, True)
    assert gad["remission"] is False
    pcl = post(client, nurse, {"instrument": "PCL-5", "items": [2] * 20}).json()
    assert (pcl["total"], pcl["band"], pcl["baseline_total"], pcl["change_pct"]) == (
        40,
        "probable_ptsd",
        None,
        None,
    )
    assert [e["event_type"] for e in outbox()] == ["OutcomeRecorded", "OutcomeRecorded"]


@pytest.mark.usefixtures("baseline")
def test_PHQ9_with_two_unanswered_items_is_scored_but_item_9_must_be_answered(
    client: TestClient, nurse: Headers, counts: Counts
) -> None:
    imputed = post(
        client, nurse, {"instrument": "PHQ-9", "items": [2, None, 2, None, 2, 2, 2, 2, 0]}
    )
    assert imputed.status_code == 201
    assert imputed.json()["total"] == 15  # 12 over 7 answers, times 9
    before = counts()
    response = post(client, nurse, {"instrument": "PHQ-9", "items": [2, 2, 2, 2, 2, 2, 2, 2, None]})
    error = assert_error(response, 422, "validation_error")
    assert error["details"][0]["field"] == "items[8]"
    assert counts() == before


def test_a_patient_known_only_from_a_session_has_no_baseline(
    client: TestClient, deliver: Deliver, nurse: Headers
) -> None:
    deliver(scheduled("ses-1", patient_id="pt-9"))
    body = post(
        client, nurse, {"instrument": "PHQ-9", "items": [1] * 8 + [0]}, patient="pt-9"
    ).json()
    assert (body["baseline_total"], body["change_pct"], body["response"]) == (None, None, False)


def test_an_unknown_patient_is_404(client: TestClient, nurse: Headers, counts: Counts) -> None:
    before = counts()
    response = post(client, nurse, {"instrument": "PHQ-9", "items": [0] * 9}, patient="pt-x")
    assert_error(response, 404, "not_found")
    assert counts() == before


@pytest.mark.usefixtures("baseline")
def test_MBC_2_a_rise_of_5_from_the_previous_PHQ9_is_a_follow_up(
    client: TestClient, therapist: Headers, outbox: Outbox
) -> None:
    first = post(client, therapist, {"instrument": "PHQ-9", "items": [1, 1, 1, 1, 1, 1, 0, 0, 0]})
    assert first.json()["follow_up"] == []  # 6: far below the baseline of 20
    second = post(client, therapist, {"instrument": "PHQ-9", "items": [2, 2, 2, 1, 1, 1, 1, 1, 0]})
    assert second.json()["follow_up"] == ["MBC-2"]  # 11 = 6 + 5
    assert [e["data"]["follow_up"] for e in outbox("OutcomeRecorded")] == [[], ["MBC-2"]]


@pytest.mark.usefixtures("baseline")
def test_GAD7_and_PCL5_follow_ups_are_published(
    client: TestClient, therapist: Headers, outbox: Outbox
) -> None:
    gad = post(client, therapist, {"instrument": "GAD-7", "items": [2, 2, 2, 2, 1, 1, 0]})
    assert gad.json()["follow_up"] == ["MBC-GAD7-REFER"]  # 10
    pcl = post(
        client,
        therapist,
        {"instrument": "PCL-5", "items": [3, 1, 1, 1, 1, 3, 1, 3, 3] + [1] * 5 + [3, 3] + [1] * 4},
    )
    assert "MBC-PCL5-PROVISIONAL" in pcl.json()["follow_up"]


@pytest.mark.usefixtures("baseline")
def test_a_measure_names_only_a_session_of_its_patient(
    client: TestClient, therapist: Headers, counts: Any
) -> None:
    before = counts()
    response = post(
        client,
        therapist,
        {"instrument": "PHQ-9", "items": [0] * 9, "session_id": "ses-someone-else"},
    )
    assert response.status_code == 422
    assert counts() == before


def test_MBC_1_in_a_session_of_a_patient_known_only_from_the_session(
    client: TestClient, therapist: Headers, open_session: Callable[..., str], outbox: Outbox
) -> None:
    open_session(baseline=False)
    response = post(
        client,
        therapist,
        {"instrument": "PHQ-9", "items": [1] * 9, "session_id": "ses-1"},
    )
    assert response.status_code == 201, response.text
    assert response.json()["safety_concern"] == "critical"
