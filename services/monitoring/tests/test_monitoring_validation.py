"""Invalid input (CONTRACT section 4): 422 naming the field; nothing stored or published."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from fastapi.testclient import TestClient

from kap_shared.testing_ops import assert_422_naming

from .clock import ago
from .conftest import Counts, Headers

IN_AN_HOUR = ago(minutes=-60)

VITALS_CASES: list[tuple[str, dict[str, Any], str]] = [
    ("no metric at all", {"symptoms": ["nausea"]}, "body"),
    ("empty body", {}, "body"),
    ("systolic without diastolic", {"bp_systolic": 120}, "bp_diastolic"),
    ("diastolic without systolic", {"bp_diastolic": 80}, "bp_diastolic"),
    ("systolic not above diastolic", {"bp_systolic": 80, "bp_diastolic": 90}, "bp_diastolic"),
    ("systolic zero", {"bp_systolic": 0, "bp_diastolic": 0}, "bp_systolic"),
    ("systolic 400", {"bp_systolic": 400, "bp_diastolic": 90}, "bp_systolic"),
    ("heart rate not a number", {"heart_rate": "fast"}, "heart_rate"),
    ("heart rate fractional", {"heart_rate": 80.5}, "heart_rate"),
    ("heart rate negative", {"heart_rate": -1}, "heart_rate"),
    ("spo2 above 100", {"spo2": 100.1}, "spo2"),
    ("spo2 negative", {"spo2": -1}, "spo2"),
    ("respiratory rate 100", {"respiratory_rate": 100}, "respiratory_rate"),
    ("MOAA/S 6", {"sedation_moaas": 6}, "sedation_moaas"),
    ("MOAA/S as a bool", {"sedation_moaas": True}, "sedation_moaas"),
    ("free-text symptom", {"heart_rate": 80, "symptoms": ["felt odd at home"]}, "symptoms[0]"),
    ("recorded in the future", {"heart_rate": 80, "recorded_at": IN_AN_HOUR}, "recorded_at"),
    (
        "recorded_at without offset",
        {"heart_rate": 80, "recorded_at": "2026-03-02T09:00:00"},
        "recorded_at",
    ),
    ("reading_id with spaces", {"heart_rate": 80, "reading_id": "a b"}, "reading_id"),
    ("reading_id too long", {"heart_rate": 80, "reading_id": "r" * 101}, "reading_id"),
    ("unknown field", {"heart_rate": 80, "temperature": 37.2}, "temperature"),
]

IV = {"route": "iv", "agent": "ketamine", "dose_mg": 35}
ESK = {"route": "intranasal_esketamine", "agent": "esketamine", "dose_mg": 28, "device_number": 1}

DOSE_CASES: list[tuple[str, dict[str, Any], str]] = [
    ("missing route", {"agent": "ketamine", "dose_mg": 35}, "route"),
    ("unknown route", {**IV, "route": "rectal"}, "route"),
    ("unknown agent", {**IV, "agent": "propofol"}, "agent"),
    ("esketamine by IV", {**IV, "agent": "esketamine", "device_number": 1}, "agent"),
    ("ketamine intranasal", {**ESK, "agent": "ketamine"}, "agent"),
    ("esketamine without device", {**ESK, "device_number": None}, "device_number"),
    ("device 4", {**ESK, "device_number": 4}, "device_number"),
    ("device 0", {**ESK, "device_number": 0}, "device_number"),
    ("device on ketamine", {**IV, "device_number": 1}, "device_number"),
    ("dose zero", {**IV, "dose_mg": 0}, "dose_mg"),
    ("dose absurd", {**IV, "dose_mg": 5000}, "dose_mg"),
    (
        "nasal spray in the future",
        {**ESK, "nasal_medication_at": IN_AN_HOUR},
        "nasal_medication_at",
    ),
    (
        "ends before it starts",
        {**IV, "administered_at": ago(minutes=5), "dosing_ended_at": ago(minutes=10)},
        "dosing_ended_at",
    ),
    (
        "unknown medication class",
        {**ESK, "concomitant_medications": ["ssri"]},
        "concomitant_medications[0]",
    ),
    (
        "a class twice",
        {**ESK, "concomitant_medications": ["opioid", "opioid"]},
        "concomitant_medications",
    ),
    ("free-text lot", {**ESK, "lot_number": "lot of Mrs X"}, "lot_number"),
    ("unknown field", {**IV, "patient_name": "x"}, "patient_name"),
]

DECISION_CASES: list[tuple[str, dict[str, Any], str]] = [
    ("missing decision", {"reason": "other"}, "decision"),
    ("unknown decision", {"decision": "maybe", "reason": "other"}, "decision"),
    ("free-text reason", {"decision": "proceed", "reason": "BP fine, spoke to Mrs X"}, "reason"),
    ("note too long", {"decision": "proceed", "reason": "other", "note": "x" * 2001}, "note"),
]

MEASURE_CASES: list[tuple[str, dict[str, Any], str]] = [
    ("unknown instrument", {"instrument": "BDI-II", "items": [1] * 21}, "instrument"),
    ("too few PHQ-9 items", {"instrument": "PHQ-9", "items": [1] * 8}, "items"),
    ("too many GAD-7 items", {"instrument": "GAD-7", "items": [1] * 9}, "items"),
    (
        "answer out of range",
        {"instrument": "PHQ-9", "items": [1, 1, 1, 4, 1, 1, 1, 1, 0]},
        "items[3]",
    ),
    ("negative answer", {"instrument": "GAD-7", "items": [1, -1, 1, 1, 1, 1, 1]}, "items[1]"),
    ("bool answer", {"instrument": "PHQ-9", "items": [True, 1, 1, 1, 1, 1, 1, 1, 0]}, "items[0]"),
    (
        "three unanswered",
        {"instrument": "PHQ-9", "items": [None, None, None, 1, 1, 1, 1, 1, 0]},
        "items",
    ),
    ("GAD-7 unanswered", {"instrument": "GAD-7", "items": [None, 1, 1, 1, 1, 1, 1]}, "items"),
    ("item 9 unanswered", {"instrument": "PHQ-9", "items": [1] * 8 + [None]}, "items[8]"),
    (
        "in the future",
        {"instrument": "GAD-7", "items": [1] * 7, "administered_at": IN_AN_HOUR},
        "administered_at",
    ),
]


@pytest.fixture
def window(open_session: Callable[..., str]) -> str:
    return open_session()


# Each endpoint, the role that may call it and its invalid bodies.
ENDPOINTS: list[tuple[str, str, list[tuple[str, dict[str, Any], str]]]] = [
    ("/sessions/ses-1/vitals", "nurse", VITALS_CASES),
    ("/sessions/ses-1/doses", "nurse", DOSE_CASES),
    ("/sessions/ses-1/predose-decision", "prescriber", DECISION_CASES),
    ("/patients/pt-1/measures", "nurse", MEASURE_CASES),
]
INVALID = [
    pytest.param(path, role, body, field, id=f"{path.rsplit('/', 1)[-1]}: {case}")
    for path, role, cases in ENDPOINTS
    for case, body, field in cases
]


@pytest.mark.usefixtures("window")
@pytest.mark.parametrize(("path", "role", "body", "field"), INVALID)
def test_invalid_body_is_422_naming_the_field(
    client: TestClient,
    counts: Counts,
    request: pytest.FixtureRequest,
    path: str,
    role: str,
    body: dict[str, Any],
    field: str,
) -> None:
    headers: Headers = request.getfixturevalue(role)
    before = counts()
    assert_422_naming(client.post(path, json=body, headers=headers), field)
    assert counts() == before


@pytest.mark.usefixtures("window")
def test_malformed_json_is_422(client: TestClient, nurse: Headers, counts: Counts) -> None:
    before = counts()
    response = client.post(
        "/sessions/ses-1/vitals",
        content=b"{not json",
        headers={**nurse, "content-type": "application/json"},
    )
    assert response.status_code == 422
    assert counts() == before
