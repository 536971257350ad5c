"""Fixtures for intake's unit tests: the app in-process on a throw-away SQLite DB."""

from __future__ import annotations

import copy
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from kap_intake.bootstrap import build
from kap_intake.config import IntakeSettings
from kap_shared.testing import app_client, caller, database_file
from kap_shared.testing_app import outbox_payloads, table_counts

SITE_A = "site-a"


def screening(bp_systolic: int, bp_diastolic: int, **changes: Any) -> dict[str, Any]:
    """The body of POST /patients/{id}/screenings: IV, no contraindications, PHQ-9 items
    at 1 (item 9 at 0), GAD-7 7, heart rate 70 and this blood pressure; with `changes`."""
    vitals = {"bp_systolic": bp_systolic, "bp_diastolic": bp_diastolic, "heart_rate": 70}
    body = {"route": "iv", "contraindications": [], "phq9": [1] * 8 + [0], "gad7": [1] * 7}
    return {**body, "vitals": vitals, **changes}


REFERRAL: dict[str, Any] = {
    "given_name": "Marguerite",
    "family_name": "Okonkwo-Villanueva",
    "date_of_birth": "1984-03-17",
    "contact": {"phone": "+1 555 010 7788", "email": "m.okonkwo@example.org"},
    "site_id": SITE_A,
    "indications": ["trd", "ptsd"],
    "referral_source": "primary_care",
}


client = app_client(IntakeSettings, build)


db = database_file(IntakeSettings)


therapist = caller("th-ana", "therapist", [SITE_A])
prescriber = caller("rx-bo", "prescriber", [SITE_A])


@pytest.fixture
def referral() -> dict[str, Any]:
    """A referral body with PHI that must never leave intake."""
    return copy.deepcopy(REFERRAL)


@pytest.fixture
def patient_id(client: TestClient, therapist: dict[str, str], referral: dict[str, Any]) -> str:
    response = client.post("/patients", json=referral, headers=therapist)
    assert response.status_code == 201, response.text
    patient: str = response.json()["patient_id"]
    return patient


@pytest.fixture
def outbox(db: Path) -> Callable[[], list[dict[str, Any]]]:
    """The outbox's event payloads, in publishing order."""

    return partial(outbox_payloads, db)


@pytest.fixture
def counts(db: Path) -> Callable[[], dict[str, int]]:
    """Row counts of every table a request could write to."""

    return partial(table_counts, db, ("patients", "screenings", "consents", "outbox_messages"))
