"""Intake's HTTP API (CONTRACT section 4): referrals, screenings, review, consent,
and the events each one leaves in the outbox (CONTRACT sections 1-3)."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from kap_shared.events import decode
from kap_shared.events.topics import INTAKE_EVENTS
from kap_shared.testing import CONTRACT_ENVELOPE_FIELDS as ENVELOPE_FIELDS
from kap_shared.testing import rows

Outbox = Callable[[], list[dict[str, Any]]]
Headers = dict[str, str]


def screening(
    *,
    route: str = "iv",
    phq9: list[int | None] | None = None,
    gad7: list[int] | None = None,
    pcl5: list[int] | None = None,
    contraindications: list[str] | None = None,
    bp: tuple[int, int] = (124, 78),
    heart_rate: int = 72,
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "route": route,
        "phq9": phq9 if phq9 is not None else [1, 2, 1, 2, 1, 2, 1, 2, 0],
        "gad7": gad7 if gad7 is not None else [1, 1, 1, 1, 1, 1, 1],
        "contraindications": contraindications or [],
        "vitals": {"bp_systolic": bp[0], "bp_diastolic": bp[1], "heart_rate": heart_rate},
    }
    if pcl5 is not None:
        body["pcl5"] = pcl5
    return body


def screen(client: TestClient, patient_id: str, headers: Headers, **kwargs: Any) -> Any:
    response = client.post(
        f"/patients/{patient_id}/screenings", json=screening(**kwargs), headers=headers
    )
    assert response.status_code == 201, response.text
    return response.json()


def review(
    client: TestClient,
    patient_id: str,
    screening_id: str,
    headers: Headers,
    decision: str = "approve",
    reason: str = "benefit_outweighs_risk",
    **extra: str,
) -> httpx.Response:
    """A prescriber's decision on a screening that needed review."""
    response: httpx.Response = client.post(
        f"/patients/{patient_id}/screenings/{screening_id}/review",
        json={"decision": decision, "reason": reason, **extra},
        headers=headers,
    )
    return response


def assert_no_phi(payload: dict[str, Any], referral: dict[str, Any]) -> None:
    text = json.dumps(payload).lower()
    phi = [
        referral["given_name"],
        referral["family_name"],
        referral["date_of_birth"],
        referral["contact"]["phone"],
        referral["contact"]["email"],
        "given_name",
        "family_name",
        "date_of_birth",
        "phone",
        "email",
    ]
    for value in phi:
        assert value.lower() not in text, f"PHI {value!r} leaked into {payload['event_type']}"


# -- referral ------------------------------------------------------------------------


def test_post_patients_201_and_patient_referred_without_phi(
    client: TestClient, therapist: Headers, referral: dict[str, Any], outbox: Outbox
) -> None:
    response = client.post("/patients", json=referral, headers=therapist)

    assert response.status_code == 201
    patient_id = response.json()["patient_id"]
    assert response.json() == {"patient_id": patient_id}
    [event] = outbox()
    assert set(event) == ENVELOPE_FIELDS
    assert event["event_type"] == "PatientReferred"
    assert event["producer"] == "intake"
    assert event["patient_id"] == patient_id
    assert event["site_id"] == "site-a"
    assert event["causation_id"] is None
    assert event["data"] == {"indications": ["trd", "ptsd"], "referral_source": "primary_care"}
    assert_no_phi(event, referral)
    assert decode(INTAKE_EVENTS, event).event_type == "PatientReferred"


def test_outbox_row_is_keyed_by_patient_with_contract_headers(
    client: TestClient, patient_id: str, db: Path
) -> None:
    [(topic, key, event_type, headers, published_at)] = rows(
        db, "SELECT topic, key, event_type, headers, published_at FROM outbox_messages"
    )
    assert (topic, key, event_type) == (INTAKE_EVENTS, patient_id, "PatientReferred")
    assert json.loads(headers)["event_type"] == "PatientReferred"
    assert json.loads(headers)["content-type"] == "application/json"
    assert published_at is None  # the broker is unreachable: it waits in the outbox


def test_phi_is_stored_only_in_intake(client: TestClient, patient_id: str, db: Path) -> None:
    [(given, family, dob, phone, email)] = rows(
        db, "SELECT given_name, family_name, date_of_birth, phone, email FROM patients"
    )
    assert (given, family, dob) == ("Marguerite", "Okonkwo-Villanueva", "1984-03-17")
    assert (phone, email) == ("+1 555 010 7788", "m.okonkwo@example.org")


def test_get_patient_returns_the_intake_record(
    client: TestClient, therapist: Headers, patient_id: str
) -> None:
    response = client.get(f"/patients/{patient_id}", headers=therapist)

    assert response.status_code == 200
    body = response.json()
    assert body["patient_id"] == patient_id
    assert body["site_id"] == "site-a"
    assert body["given_name"] == "Marguerite"
    assert body["date_of_birth"] == "1984-03-17"
    assert body["email"] == "m.okonkwo@example.org"
    assert body["indications"] == ["trd", "ptsd"]
    assert body["screenings"] == []
    assert body["consents"] == []


def test_get_patient_lists_screenings_and_consents(
    client: TestClient, therapist: Headers, patient_id: str
) -> None:
    screened = screen(client, patient_id, therapist)
    client.post(
        f"/patients/{patient_id}/consents",
        json={"scope": "treatment", "granted": True},
        headers=therapist,
    )

    body = client.get(f"/patients/{patient_id}", headers=therapist).json()

    assert [s["screening_id"] for s in body["screenings"]] == [screened["screening_id"]]
    assert [(c["scope"], c["granted"]) for c in body["consents"]] == [("treatment", True)]


# -- screenings ----------------------------------------------------------------------


def test_screening_eligible_emits_patient_screened_with_baseline(
    client: TestClient,
    therapist: Headers,
    patient_id: str,
    outbox: Outbox,
    referral: dict[str, Any],
) -> None:
    body = screen(
        client,
        patient_id,
        therapist,
        phq9=[1, 2, 1, 2, 1, 2, 1, 2, 0],
        gad7=[2, 2, 2, 2, 2, 2, 1],
        pcl5=[2] * 20,
        bp=(140, 90),
        heart_rate=81,
    )

    assert body["outcome"] == "eligible"
    # GAD-7 13 and PCL-5 all 2s are follow-up flags, not eligibility findings.
    assert body["reasons"] == ["SCR-GAD7-10", "SCR-PCL5-DX"]
    assert body["scores"]["PHQ-9"] == {"total": 12, "band": "moderate", "imputed_items": 0}
    referred, screened = outbox()
    assert screened["event_type"] == "PatientScreened"
    assert screened["correlation_id"] == referred["correlation_id"]
    assert screened["data"] == {
        "screening_id": body["screening_id"],
        "outcome": "eligible",
        "route": "iv",
        "indications": ["trd", "ptsd"],
        "contraindications": [],
        "reasons": ["SCR-GAD7-10", "SCR-PCL5-DX"],
        "baseline": {
            "phq9_total": 12,
            "phq9_item9": 0,
            "gad7_total": 13,
            "pcl5_total": 40,
            "bp_systolic": 140,
            "bp_diastolic": 90,
            "heart_rate": 81,
        },
        "reviewed_by": None,
        "review_reason": None,
    }
    assert_no_phi(screened, referral)
    assert decode(INTAKE_EVENTS, screened).event_type == "PatientScreened"


def test_screening_needs_review_spr_pre_5_and_mbc_1(
    client: TestClient, therapist: Headers, patient_id: str, outbox: Outbox
) -> None:
    body = screen(client, patient_id, therapist, bp=(141, 90), phq9=[0, 0, 0, 0, 0, 0, 0, 0, 1])

    assert body["outcome"] == "needs_review"
    assert body["reasons"] == ["SPR-PRE-5", "MBC-1"]
    event = outbox()[-1]
    assert event["data"]["outcome"] == "needs_review"
    assert event["data"]["reasons"] == ["SPR-PRE-5", "MBC-1"]
    assert event["data"]["baseline"]["phq9_item9"] == 1
    assert event["data"]["baseline"]["phq9_total"] == 1


def test_screening_needs_review_for_relative_contraindication(
    client: TestClient, therapist: Headers, patient_id: str, outbox: Outbox
) -> None:
    body = screen(client, patient_id, therapist, contraindications=["seizure_disorder"])

    assert (body["outcome"], body["reasons"]) == ("needs_review", ["SCR-CI-REL"])
    assert outbox()[-1]["data"]["contraindications"] == [
        {"code": "seizure_disorder", "class": "relative"}
    ]


def test_screening_ineligible_for_absolute_contraindication(
    client: TestClient, therapist: Headers, patient_id: str, outbox: Outbox
) -> None:
    body = screen(
        client,
        patient_id,
        therapist,
        route="intranasal_esketamine",
        contraindications=["seizure_disorder", "current_psychosis"],
    )

    assert body["outcome"] == "ineligible"
    assert body["reasons"] == ["SCR-CI-ABS", "SCR-CI-REL"]
    data = outbox()[-1]["data"]
    assert data["outcome"] == "ineligible"
    assert data["route"] == "intranasal_esketamine"
    assert data["reasons"] == ["SCR-CI-ABS", "SCR-CI-REL"]
    assert data["contraindications"] == [
        {"code": "current_psychosis", "class": "absolute"},
        {"code": "seizure_disorder", "class": "relative"},
    ]


def test_screening_ineligible_scr_age_18_for_a_minor(
    client: TestClient, therapist: Headers, referral: dict[str, Any], outbox: Outbox
) -> None:
    referral["date_of_birth"] = date(date.today().year - 12, 1, 1).isoformat()
    patient_id = client.post("/patients", json=referral, headers=therapist).json()["patient_id"]

    body = screen(client, patient_id, therapist)

    assert (body["outcome"], body["reasons"]) == ("ineligible", ["SCR-AGE-18"])
    assert outbox()[-1]["data"]["reasons"] == ["SCR-AGE-18"]


def _eighteenth_birthday_today() -> date:
    """The birth date of someone who turns 18 today (28 Feb for a 29 Feb today)."""
    today = date.today()
    try:
        return today.replace(year=today.year - 18)
    except ValueError:
        return date(today.year - 18, 2, 28)


@pytest.mark.parametrize(
    ("days_younger", "outcome", "reasons"),
    [(0, "eligible", []), (1, "ineligible", ["SCR-AGE-18"])],
    ids=["18 today", "18 tomorrow"],
)
def test_scr_age_18_boundary_through_http(
    client: TestClient,
    therapist: Headers,
    referral: dict[str, Any],
    days_younger: int,
    outcome: str,
    reasons: list[str],
) -> None:
    born = _eighteenth_birthday_today() + timedelta(days=days_younger)
    referral["date_of_birth"] = born.isoformat()
    patient_id = client.post("/patients", json=referral, headers=therapist).json()["patient_id"]

    body = screen(client, patient_id, therapist)

    assert (body["outcome"], body["reasons"]) == (outcome, reasons)


def test_screening_imputes_up_to_two_missing_phq9_items(
    client: TestClient, therapist: Headers, patient_id: str, outbox: Outbox
) -> None:
    # 7 answered items summing to 12 -> 12 * 9 / 7 = 15.43 -> 15 (rulebook 3.1).
    body = screen(client, patient_id, therapist, phq9=[2, 2, 2, 2, 2, 2, None, None, 0])

    assert body["scores"]["PHQ-9"] == {
        "total": 15,
        "band": "moderately_severe",
        "imputed_items": 2,
    }
    assert outbox()[-1]["data"]["baseline"]["phq9_total"] == 15


# -- review ----------------------------------------------------------------------------


@pytest.fixture
def review_screening_id(client: TestClient, therapist: Headers, patient_id: str) -> str:
    body = screen(client, patient_id, therapist, bp=(152, 96))
    assert body["outcome"] == "needs_review"
    screening_id: str = body["screening_id"]
    return screening_id


def test_prescriber_approves_needs_review_and_a_new_patient_screened_is_emitted(
    client: TestClient,
    prescriber: Headers,
    patient_id: str,
    review_screening_id: str,
    outbox: Outbox,
    db: Path,
) -> None:
    note = "Rechecked after 10 min, 134/84; discussed with Mrs O. at length"
    response = review(
        client,
        patient_id,
        review_screening_id,
        prescriber,
        "approve",
        "bp_controlled_on_recheck",
        note=note,
    )

    assert response.status_code == 200, response.text
    body = response.json()
    assert body["outcome"] == "eligible"
    assert body["reviewed_by"] == "rx-bo"
    assert body["review_decision"] == "approve"
    events = outbox()
    assert [e["event_type"] for e in events] == [
        "PatientReferred",
        "PatientScreened",
        "PatientScreened",
    ]
    first, second = events[1], events[2]
    assert second["event_id"] != first["event_id"]
    assert second["correlation_id"] == first["correlation_id"]
    assert second["data"]["screening_id"] == review_screening_id
    assert second["data"]["outcome"] == "eligible"
    assert second["data"]["reviewed_by"] == "rx-bo"
    assert second["data"]["review_reason"] == "bp_controlled_on_recheck"
    assert second["data"]["reasons"] == ["SPR-PRE-5"]
    assert second["data"]["baseline"] == first["data"]["baseline"]
    # The prescriber's free-text note stays in intake (PHI rule).
    assert all(note not in json.dumps(e) for e in events)
    assert rows(db, "SELECT review_note FROM screenings") == [(note,)]


def test_prescriber_declines_needs_review_making_it_ineligible(
    client: TestClient,
    prescriber: Headers,
    patient_id: str,
    review_screening_id: str,
    outbox: Outbox,
) -> None:
    response = review(
        client, patient_id, review_screening_id, prescriber, "decline", "risk_outweighs_benefit"
    )

    assert response.status_code == 200
    assert response.json()["outcome"] == "ineligible"
    assert outbox()[-1]["data"]["outcome"] == "ineligible"
    assert outbox()[-1]["data"]["reviewed_by"] == "rx-bo"


def test_scr_review_1_reviewing_an_eligible_screening_is_409(
    client: TestClient, therapist: Headers, prescriber: Headers, patient_id: str, counts: Any
) -> None:
    eligible = screen(client, patient_id, therapist)
    before = counts()

    response = review(client, patient_id, eligible["screening_id"], prescriber)

    assert response.status_code == 409
    assert response.json()["error"]["code"] == "SCR-REVIEW-1"
    assert "SCR-REVIEW-1" in response.json()["error"]["message"]
    assert counts() == before


def test_scr_review_1_a_decided_screening_cannot_be_reviewed_again(
    client: TestClient, prescriber: Headers, patient_id: str, review_screening_id: str, counts: Any
) -> None:
    declined = review(
        client, patient_id, review_screening_id, prescriber, "decline", "patient_declined"
    )
    assert declined.status_code == 200
    before = counts()

    again = review(client, patient_id, review_screening_id, prescriber)

    assert again.status_code == 409
    assert again.json()["error"]["code"] == "SCR-REVIEW-1"
    assert counts() == before


def test_review_of_unknown_screening_is_404(
    client: TestClient, prescriber: Headers, patient_id: str
) -> None:
    response = review(client, patient_id, "no-such-screening", prescriber)
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"


def test_review_of_another_patients_screening_is_404(
    client: TestClient,
    therapist: Headers,
    prescriber: Headers,
    referral: dict[str, Any],
    review_screening_id: str,
) -> None:
    other = client.post("/patients", json=referral, headers=therapist).json()["patient_id"]
    response = review(client, other, review_screening_id, prescriber)
    assert response.status_code == 404


# -- consent -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("scope", "granted"),
    [("treatment", True), ("rems_enrollment", True), ("data_sharing", False)],
)
def test_consent_recorded(
    client: TestClient,
    therapist: Headers,
    patient_id: str,
    outbox: Outbox,
    referral: dict[str, Any],
    scope: str,
    granted: bool,
) -> None:
    response = client.post(
        f"/patients/{patient_id}/consents",
        json={"scope": scope, "granted": granted},
        headers=therapist,
    )

    assert response.status_code == 201, response.text
    consent = response.json()
    assert (consent["scope"], consent["granted"], consent["patient_id"]) == (
        scope,
        granted,
        patient_id,
    )
    referred, event = outbox()
    assert event["event_type"] == "ConsentRecorded"
    assert event["correlation_id"] == referred["correlation_id"]
    assert event["data"] == {
        "consent_id": consent["consent_id"],
        "scope": scope,
        "granted": granted,
    }
    assert_no_phi(event, referral)
    assert decode(INTAKE_EVENTS, event).event_type == "ConsentRecorded"


def test_every_event_of_one_episode_shares_the_correlation_id(
    client: TestClient, therapist: Headers, prescriber: Headers, patient_id: str, outbox: Outbox
) -> None:
    sid = screen(client, patient_id, therapist, phq9=[0, 0, 0, 0, 0, 0, 0, 0, 2])["screening_id"]
    review(client, patient_id, sid, prescriber, "approve", "risk_mitigated")
    client.post(
        f"/patients/{patient_id}/consents",
        json={"scope": "treatment", "granted": True},
        headers=therapist,
    )

    events = outbox()
    assert len(events) == 4
    assert len({e["correlation_id"] for e in events}) == 1
    assert len({e["event_id"] for e in events}) == 4
    assert {e["patient_id"] for e in events} == {patient_id}
