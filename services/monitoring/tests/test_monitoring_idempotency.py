"""Idempotency-Key on monitoring's creating POSTs (CONTRACT 6.4): a retried
measure records one OutcomeRecorded (and one SafetyConcernRaised)."""

from __future__ import annotations

from fastapi.testclient import TestClient

from kap_shared import testing_ops as ops

from .conftest import (
    Deliver,
    Headers,
    Outbox,
    screened,
)


def test_a_retried_measure_is_recorded_once(
    client: TestClient, therapist: Headers, outbox: Outbox, deliver: Deliver
) -> None:
    deliver(screened(phq9_total=20, gad7_total=12, pcl5_total=None))
    body = {"instrument": "PHQ-9", "items": [2, 2, 1, 1, 1, 1, 1, 1, 1]}
    headers = {**therapist, "Idempotency-Key": "measure-1"}
    first = client.post("/patients/pt-1/measures", json=body, headers=headers)
    again = client.post("/patients/pt-1/measures", json=body, headers=headers)
    assert first.status_code == 201, first.text
    assert (again.status_code, again.json()) == (201, first.json())
    assert again.headers["idempotent-replayed"] == "true"
    assert [e["event_type"] for e in outbox()] == ["OutcomeRecorded", "SafetyConcernRaised"]
    reused = client.post(
        "/patients/pt-1/measures", json={**body, "instrument": "GAD-7"}, headers=headers
    )
    assert reused.status_code == 409
    assert reused.json()["error"]["code"] == "idempotency_key_reused"
    assert len(outbox()) == 2


def test_the_header_is_documented_on_monitorings_creating_posts(client: TestClient) -> None:
    ops.assert_idempotency_key_documented(
        client,
        (
            "/sessions/{session_id}/vitals",
            "/sessions/{session_id}/doses",
            "/sessions/{session_id}/discharge",
            "/patients/{patient_id}/measures",
        ),
    )
