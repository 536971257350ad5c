"""Who read what (HIPAA audit controls): every request touching a patient's PHI at
intake leaves an append-only record (actor, role, site, patient, action, resource,
trace id, outcome, time), refusals included; admins read the trail at GET /audit."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from kap_shared.events.envelope import utc_now
from kap_shared.testing import rows, token

Headers = dict[str, str]
ADMIN = token("adm-1", "admin", ["*"])
TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
TRACEPARENT = f"00-{TRACE_ID}-00f067aa0ba902b7-01"


def trail(client: TestClient, **params: Any) -> list[dict[str, Any]]:
    response = client.get("/audit", params=params, headers=ADMIN)
    assert response.status_code == 200, response.text
    records: list[dict[str, Any]] = response.json()
    return records


def test_every_phi_request_leaves_a_record_naming_who_did_what(
    client: TestClient, therapist: Headers, prescriber: Headers, referral: dict[str, Any]
) -> None:
    with_trace = {**therapist, "traceparent": TRACEPARENT, "x-request-id": "req-42"}
    created = client.post("/patients", json=referral, headers=with_trace)
    assert created.status_code == 201
    patient_id = created.json()["patient_id"]
    assert client.get(f"/patients/{patient_id}", headers=therapist).status_code == 200
    assert client.get(f"/fhir/Patient/{patient_id}", headers=prescriber).status_code == 200
    consent = {"scope": "treatment", "granted": True}
    assert (
        client.post(f"/patients/{patient_id}/consents", json=consent, headers=therapist)
    ).status_code == 201

    records = trail(client, patient_id=patient_id)

    # newest first
    assert [(r["action"], r["resource"], r["status"], r["outcome"]) for r in records] == [
        ("create", "consent", 201, "allowed"),
        ("read", "fhir_patient", 200, "allowed"),
        ("read", "patient", 200, "allowed"),
        ("create", "patient", 201, "allowed"),
    ]
    assert [(r["actor"], r["role"]) for r in records] == [
        ("th-ana", "therapist"),
        ("rx-bo", "prescriber"),
        ("th-ana", "therapist"),
        ("th-ana", "therapist"),
    ]
    assert {r["site_id"] for r in records} == {"site-a"}
    assert {r["patient_id"] for r in records} == {patient_id}
    assert records[1]["path"] == f"/fhir/Patient/{patient_id}"
    assert records[1]["method"] == "GET"
    created_record = records[-1]
    assert created_record["trace_id"] == TRACE_ID
    assert created_record["request_id"] == "req-42"
    assert created_record["actor_sites"] == ["site-a"]
    assert all(r["trace_id"] and len(r["trace_id"]) == 32 for r in records)
    times = [r["at"] for r in records]
    assert times == sorted(times, reverse=True)


def test_a_keyed_write_is_recorded_with_its_effect(
    client: TestClient, therapist: Headers, referral: dict[str, Any]
) -> None:
    # Idempotency-Key (CONTRACT 6.4): the effect is held until the response is stored;
    # the audit record joins that transaction (SQLite has one writer: a second
    # transaction would wait on the first until it timed out).
    keyed = {**therapist, "Idempotency-Key": "referral-audit-1"}
    first = client.post("/patients", json=referral, headers=keyed)
    replay = client.post("/patients", json=referral, headers=keyed)
    assert (first.status_code, replay.status_code) == (201, 201)
    assert replay.json() == first.json()
    patient_id = first.json()["patient_id"]
    assert client.get(f"/patients/{patient_id}", headers=therapist).status_code == 200

    records = trail(client, actor="th-ana")
    assert [(r["action"], r["resource"], r["patient_id"]) for r in records][-2:] == [
        ("read", "patient", patient_id),
        ("create", "patient", patient_id),
    ]


def test_refused_and_unknown_requests_are_recorded_too(
    client: TestClient, patient_id: str, outbox: Callable[[], list[dict[str, Any]]]
) -> None:
    events_before = outbox()
    elsewhere = token("rn-zed", "nurse", ["site-b"])
    wildcard = token("rn-all", "nurse", ["*"])  # CONTRACT 6.4: '*' is for admin only
    device = token("gw-1", "device", ["site-a"])  # a role that may not read PHI

    assert client.get(f"/patients/{patient_id}", headers=elsewhere).status_code == 403
    assert client.get(f"/fhir/Patient/{patient_id}", headers=wildcard).status_code == 403
    assert client.get(f"/patients/{patient_id}", headers=device).status_code == 403
    assert client.get("/fhir/Patient/no-such-patient", headers=elsewhere).status_code == 404
    assert client.get(f"/patients/{patient_id}").status_code == 401  # nobody to name

    refused = trail(client, patient_id=patient_id)
    by_actor = {r["actor"]: r for r in refused if r["outcome"] == "refused"}
    assert set(by_actor) == {"rn-zed", "rn-all", "gw-1"}
    assert by_actor["rn-zed"]["status"] == 403
    assert by_actor["rn-zed"]["site_id"] == "site-a"  # the patient's site: the refusal
    assert by_actor["rn-zed"]["actor_sites"] == ["site-b"]
    assert by_actor["rn-all"]["resource"] == "fhir_patient"
    assert by_actor["gw-1"]["role"] == "device"
    assert not [r for r in refused if r["actor"] is None]  # 401 is not recorded

    [unknown] = trail(client, patient_id="no-such-patient")
    assert (unknown["actor"], unknown["status"], unknown["outcome"]) == (
        "rn-zed",
        404,
        "not_found",
    )
    # The trail never leaves intake: reading and refusing published nothing.
    assert outbox() == events_before


def test_a_refused_write_is_recorded_and_stores_nothing(
    client: TestClient, referral: dict[str, Any], counts: Callable[[], dict[str, int]]
) -> None:
    before = counts()
    elsewhere = token("rn-zed", "nurse", ["site-b"])
    assert client.post("/patients", json=referral, headers=elsewhere).status_code == 403
    referral["date_of_birth"] = "not a date"
    assert (
        client.post("/patients", json=referral, headers=token("rn-a", "nurse", ["site-a"]))
    ).status_code == 422
    assert counts() == before

    records = trail(client)
    assert [(r["actor"], r["action"], r["status"], r["outcome"]) for r in records] == [
        ("rn-a", "create", 422, "rejected"),
        ("rn-zed", "create", 403, "refused"),
    ]
    assert all(r["patient_id"] is None for r in records)


def test_only_admins_read_the_trail_and_only_for_their_sites(
    client: TestClient, patient_id: str, therapist: Headers
) -> None:
    for role in ("therapist", "prescriber", "nurse", "coordinator", "device"):
        response = client.get("/audit", headers=token(f"{role}-1", role, ["site-a"]))
        assert response.status_code == 403, role
        assert response.json()["error"]["code"] == "forbidden"
    assert client.get("/audit").status_code == 401

    other_site_admin = token("adm-b", "admin", ["site-b"])
    own_site_admin = token("adm-a", "admin", ["site-a"])
    assert client.get("/audit", headers=other_site_admin).json() == []
    assert [r["patient_id"] for r in client.get("/audit", headers=own_site_admin).json()] == [
        patient_id
    ]


def test_the_trail_filters_by_actor_and_time_and_pages(
    client: TestClient, patient_id: str, therapist: Headers, prescriber: Headers
) -> None:
    for _ in range(3):
        assert client.get(f"/patients/{patient_id}", headers=prescriber).status_code == 200

    assert len(trail(client, actor="rx-bo")) == 3
    assert [r["action"] for r in trail(client, actor="th-ana")] == ["create"]
    everything = trail(client)
    assert len(everything) == 4
    first, second = trail(client, limit=2), trail(client, limit=2, offset=2)
    assert [r["audit_id"] for r in first + second] == [r["audit_id"] for r in everything]

    now = utc_now()
    assert trail(client, since=(now + timedelta(minutes=1)).isoformat()) == []
    assert len(trail(client, since=(now - timedelta(minutes=5)).isoformat())) == 4
    assert trail(client, until=(now - timedelta(minutes=5)).isoformat()) == []
    for name, value in (("limit", 0), ("limit", 501), ("offset", -1), ("offset", 2**64)):
        response = client.get("/audit", params={name: value}, headers=ADMIN)
        assert response.status_code == 422, (name, value)
        assert response.json()["error"]["details"][0]["field"] == name


@pytest.mark.parametrize(
    "statement",
    ["UPDATE audit_records SET actor = 'someone-else'", "DELETE FROM audit_records"],
)
def test_the_database_refuses_to_change_the_trail(
    client: TestClient, patient_id: str, db: Path, statement: str
) -> None:
    before = rows(db, "SELECT audit_id, actor FROM audit_records")
    assert before
    connection = sqlite3.connect(db)
    try:
        with pytest.raises(sqlite3.IntegrityError, match="append-only"):
            connection.execute(statement)
    finally:
        connection.close()
    assert rows(db, "SELECT audit_id, actor FROM audit_records") == before
