"""Idempotency-Key on intake's creating POSTs (CONTRACT 6.4): a retry after a lost
response gets the first response and creates nothing twice (no second patient
record with PHI, no second PatientScreened or ConsentRecorded)."""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from fastapi.testclient import TestClient

from kap_intake.entrypoints import http
from kap_shared import testing_ops as ops
from kap_shared.testing import token

from .test_intake_http import screening

Headers = dict[str, str]
Counts = Callable[[], dict[str, int]]


def keyed(headers: Headers, key: str) -> Headers:
    return {**headers, "Idempotency-Key": key}


def test_a_repeated_referral_returns_the_first_response_and_stores_one_patient(
    client: TestClient, therapist: Headers, referral: dict[str, Any], counts: Counts
) -> None:
    first = client.post("/patients", json=referral, headers=keyed(therapist, "ref-1"))
    assert first.status_code == 201, first.text
    before = counts()
    again = client.post("/patients", json=referral, headers=keyed(therapist, "ref-1"))
    assert again.status_code == 201
    assert again.json() == first.json()
    assert again.headers["idempotent-replayed"] == "true"
    assert "idempotent-replayed" not in first.headers
    assert (
        counts()
        == before
        == {
            "patients": 1,
            "screenings": 0,
            "consents": 0,
            "outbox_messages": 1,
        }
    )


def test_the_same_key_with_another_body_is_409_idempotency_key_reused(
    client: TestClient, therapist: Headers, referral: dict[str, Any], counts: Counts
) -> None:
    assert client.post("/patients", json=referral, headers=keyed(therapist, "k")).status_code == 201
    before = counts()
    other = {**referral, "given_name": "Someone"}
    response = client.post("/patients", json=other, headers=keyed(therapist, "k"))
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "idempotency_key_reused"
    # ... also on another path: a key names one request.
    response = client.post(
        "/patients/x/consents",
        json={"scope": "treatment", "granted": True},
        headers=keyed(therapist, "k"),
    )
    assert response.status_code == 409
    assert counts() == before


def test_keys_are_scoped_per_caller(
    client: TestClient, therapist: Headers, referral: dict[str, Any], counts: Counts
) -> None:
    other_therapist = token("th-other", "therapist", [referral["site_id"]])
    a = client.post("/patients", json=referral, headers=keyed(therapist, "same"))
    b = client.post("/patients", json=referral, headers=keyed(other_therapist, "same"))
    assert a.status_code == b.status_code == 201
    assert a.json() != b.json()
    assert counts()["patients"] == 2


def test_screening_consent_and_review_replay_without_a_second_event(
    client: TestClient,
    therapist: Headers,
    prescriber: Headers,
    patient_id: str,
    counts: Counts,
) -> None:
    body = screening(bp=(150, 95))  # SPR-PRE-5: needs review
    first = client.post(
        f"/patients/{patient_id}/screenings", json=body, headers=keyed(therapist, "scr-1")
    )
    assert first.status_code == 201, first.text
    assert first.json()["outcome"] == "needs_review"
    screening_id = first.json()["screening_id"]
    consent = {"scope": "treatment", "granted": True}
    c1 = client.post(
        f"/patients/{patient_id}/consents", json=consent, headers=keyed(therapist, "c")
    )
    review = {"decision": "approve", "reason": "bp_controlled_on_recheck"}
    review_path = f"/patients/{patient_id}/screenings/{screening_id}/review"
    r1 = client.post(review_path, json=review, headers=keyed(prescriber, "rev"))
    assert (c1.status_code, r1.status_code) == (201, 200), (c1.text, r1.text)
    before = counts()

    again = client.post(
        f"/patients/{patient_id}/screenings", json=body, headers=keyed(therapist, "scr-1")
    )
    c2 = client.post(
        f"/patients/{patient_id}/consents", json=consent, headers=keyed(therapist, "c")
    )
    r2 = client.post(review_path, json=review, headers=keyed(prescriber, "rev"))

    # The first responses, even though the screening has been reviewed since.
    assert (again.status_code, again.json()) == (201, first.json())
    assert (c2.status_code, c2.json()) == (201, c1.json())
    assert (r2.status_code, r2.json()) == (200, r1.json())
    assert counts() == before


def test_a_refused_request_with_a_key_stores_nothing_and_a_retry_is_evaluated_afresh(
    client: TestClient, therapist: Headers, patient_id: str, counts: Counts
) -> None:
    nurse_elsewhere = token("rn-x", "nurse", ["site-b"])
    body = screening()
    path = f"/patients/{patient_id}/screenings"
    refused = client.post(path, json=body, headers=keyed(nurse_elsewhere, "scr"))
    assert refused.status_code == 403
    before = counts()
    ok = client.post(path, json=body, headers=keyed(therapist, "scr"))
    assert ok.status_code == 201
    assert counts()["screenings"] == before["screenings"] + 1


def test_a_key_longer_than_255_characters_is_422_naming_the_header(
    client: TestClient, therapist: Headers, referral: dict[str, Any], counts: Counts
) -> None:
    response = client.post("/patients", json=referral, headers=keyed(therapist, "k" * 256))
    assert response.status_code == 422
    assert response.json()["error"]["details"][0]["field"] == "Idempotency-Key"
    assert counts()["patients"] == 0


def test_the_header_is_documented_on_every_creating_post(client: TestClient) -> None:
    ops.assert_idempotency_key_documented(
        client,
        (
            "/patients",
            "/patients/{patient_id}/screenings",
            "/patients/{patient_id}/screenings/{screening_id}/review",
            "/patients/{patient_id}/consents",
        ),
    )


def test_effect_and_stored_response_commit_together_a_failure_after_the_effect_keeps_neither(
    client: TestClient,
    therapist: Headers,
    referral: dict[str, Any],
    counts: Counts,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """With a key, the unit of work's commit waits for the response: a route that fails
    after its handler committed (here: building the response) leaves no patient and no
    stored response, so the client's retry runs afresh. Without a key the same failure
    would leave the patient behind (the behaviour the key exists to avoid)."""

    def broken(**_: Any) -> None:
        raise RuntimeError("response lost")

    monkeypatch.setattr(http, "PatientCreated", broken)
    with pytest.raises(RuntimeError):
        client.post("/patients", json=referral, headers=keyed(therapist, "lost"))
    assert counts()["patients"] == 0
    assert counts()["outbox_messages"] == 0
    with pytest.raises(RuntimeError):
        client.post("/patients", json=referral, headers=therapist)
    assert counts()["patients"] == 1  # unkeyed: committed before the failure

    monkeypatch.undo()
    retry = client.post("/patients", json=referral, headers=keyed(therapist, "lost"))
    assert retry.status_code == 201
    assert "idempotent-replayed" not in retry.headers
    assert counts()["patients"] == 2


def test_concurrent_requests_with_the_same_key_create_one_patient(
    client: TestClient, therapist: Headers, referral: dict[str, Any], counts: Counts
) -> None:
    def post(_: int) -> tuple[int, str]:
        response = client.post("/patients", json=referral, headers=keyed(therapist, "race"))
        return response.status_code, response.text

    with ThreadPoolExecutor(max_workers=4) as pool:
        answers = list(pool.map(post, range(4)))
    assert {status for status, _ in answers} == {201}
    assert len({text for _, text in answers}) == 1
    assert counts()["patients"] == 1
    assert counts()["outbox_messages"] == 1
