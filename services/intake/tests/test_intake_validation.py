"""Invalid input (CONTRACT section 4): 422 naming the field; nothing stored or published."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from kap_shared import testing_ops as ops
from kap_shared.testing import rows, token

from .conftest import screening

Headers = dict[str, str]
Counts = Callable[[], dict[str, int]]
Body = dict[str, Any]
Mutation = Callable[[Body], None]


def _set(path: str, value: Any) -> Mutation:
    """Set a dotted path (e.g. `vitals.bp_systolic`) in a body."""

    def mutate(body: Body) -> None:
        *parents, leaf = path.split(".")
        node = body
        for part in parents:
            node = node[part]
        node[leaf] = value

    return mutate


def _drop(path: str) -> Mutation:
    def mutate(body: Body) -> None:
        *parents, leaf = path.split(".")
        node = body
        for part in parents:
            node = node[part]
        del node[leaf]

    return mutate


def _item(field: str, index: int, value: Any) -> Mutation:
    def mutate(body: Body) -> None:
        body[field][index] = value

    return mutate


def assert_422_naming(response: Any, field: str) -> None:
    """The error names the field in its details and in its message."""
    assert field in ops.assert_422_naming(response, field)["message"]


# -- POST /patients ----------------------------------------------------------------------

TOMORROW = (date.today() + timedelta(days=1)).isoformat()

REFERRAL_CASES: list[tuple[str, Mutation, str]] = [
    ("missing given_name", _drop("given_name"), "given_name"),
    ("missing family_name", _drop("family_name"), "family_name"),
    ("missing date_of_birth", _drop("date_of_birth"), "date_of_birth"),
    ("missing site_id", _drop("site_id"), "site_id"),
    ("missing indications", _drop("indications"), "indications"),
    ("blank given_name", _set("given_name", "   "), "given_name"),
    ("no indications", _set("indications", []), "indications"),
    ("unknown indication", _set("indications", ["trd", "insomnia"]), "indications[1]"),
    ("date_of_birth in the future", _set("date_of_birth", TOMORROW), "date_of_birth"),
    ("date_of_birth not a date", _set("date_of_birth", "17/03/1984"), "date_of_birth"),
    ("bad email", _set("contact.email", "not-an-email"), "contact.email"),
    ("extra unknown field", _set("ssn", "123-45-6789"), "ssn"),
    ("extra field in contact", _set("contact.fax", "555"), "contact.fax"),
    ("date_of_birth before 1900", _set("date_of_birth", "1800-01-01"), "date_of_birth"),
    ("free-text referral_source", _set("referral_source", "Dr Jones, Elm St"), "referral_source"),
]


@pytest.mark.parametrize(
    ("mutate", "field"),
    [pytest.param(m, f, id=name) for name, m, f in REFERRAL_CASES],
)
def test_register_patient_rejects_bad_input_storing_nothing(
    client: TestClient,
    therapist: Headers,
    referral: Body,
    counts: Counts,
    mutate: Mutation,
    field: str,
) -> None:
    before = counts()
    mutate(referral)

    response = client.post("/patients", json=referral, headers=therapist)

    assert_422_naming(response, field)
    assert (
        counts()
        == before
        == {
            "patients": 0,
            "screenings": 0,
            "consents": 0,
            "outbox_messages": 0,
        }
    )


def test_body_that_is_not_json_is_422(client: TestClient, therapist: Headers) -> None:
    response = client.post(
        "/patients",
        content=b"given_name=Ann",
        headers={**therapist, "content-type": "application/json"},
    )
    assert response.status_code == 422
    assert response.json()["error"]["code"] == "validation_error"


# -- POST /patients/{id}/screenings -------------------------------------------------------


def screening_body() -> Body:
    return screening(
        128, 82, route="sublingual", contraindications=["seizure_disorder"], pcl5=[1] * 20
    )


SCREENING_CASES: list[tuple[str, Mutation, str]] = [
    ("missing route", _drop("route"), "route"),
    ("boolean as PHQ-9 item 9 (MBC-1)", _item("phq9", 8, True), "phq9[8]"),
    ("boolean as GAD-7 item", _item("gad7", 0, False), "gad7[0]"),
    ("missing phq9", _drop("phq9"), "phq9"),
    ("missing gad7", _drop("gad7"), "gad7"),
    ("missing vitals", _drop("vitals"), "vitals"),
    ("missing heart_rate", _drop("vitals.heart_rate"), "vitals.heart_rate"),
    ("unknown route", _set("route", "intravenous"), "route"),
    ("phq9 item above 3", _item("phq9", 3, 4), "phq9[3]"),
    ("phq9 item negative", _item("phq9", 0, -1), "phq9[0]"),
    ("phq9 item not a number", _item("phq9", 2, "often"), "phq9[2]"),
    ("phq9 three items missing", _set("phq9", [1, None, 1, None, 1, None, 1, 1, 0]), "phq9"),
    ("phq9 item 9 unanswered", _item("phq9", 8, None), "phq9[8]"),
    ("phq9 eight items", _set("phq9", [1] * 8), "phq9"),
    ("phq9 ten items", _set("phq9", [1] * 10), "phq9"),
    ("gad7 six items", _set("gad7", [1] * 6), "gad7"),
    ("gad7 item above 3", _item("gad7", 2, 4), "gad7[2]"),
    ("gad7 item unanswered", _item("gad7", 0, None), "gad7[0]"),
    ("pcl5 nineteen items", _set("pcl5", [1] * 19), "pcl5"),
    ("pcl5 item above 4", _item("pcl5", 19, 5), "pcl5[19]"),
    (
        "unknown contraindication",
        _set("contraindications", ["unicorn_allergy"]),
        "contraindications",
    ),
    (
        "systolic equals diastolic",
        _set("vitals", {"bp_systolic": 80, "bp_diastolic": 80, "heart_rate": 70}),
        "vitals",
    ),
    (
        "systolic below diastolic",
        _set("vitals", {"bp_systolic": 70, "bp_diastolic": 90, "heart_rate": 70}),
        "vitals",
    ),
    ("systolic out of range", _set("vitals.bp_systolic", 400), "vitals.bp_systolic"),
    ("heart rate out of range", _set("vitals.heart_rate", 0), "vitals.heart_rate"),
    ("extra unknown field", _set("notes", "anxious"), "notes"),
    ("extra field in vitals", _set("vitals.spo2", 97), "vitals.spo2"),
]


@pytest.mark.parametrize(
    ("mutate", "field"),
    [pytest.param(m, f, id=name) for name, m, f in SCREENING_CASES],
)
def test_screening_rejects_bad_input_storing_and_publishing_nothing(
    client: TestClient,
    therapist: Headers,
    patient_id: str,
    counts: Counts,
    mutate: Mutation,
    field: str,
) -> None:
    body = screening_body()
    mutate(body)
    before = counts()

    response = client.post(f"/patients/{patient_id}/screenings", json=body, headers=therapist)

    assert_422_naming(response, field)
    assert counts() == before
    assert before["screenings"] == 0
    assert before["outbox_messages"] == 1  # the referral only


def test_screening_body_of_the_matrix_is_itself_valid(
    client: TestClient, therapist: Headers, patient_id: str
) -> None:
    """Guards the matrix above: each case fails only because of its own mutation."""
    response = client.post(
        f"/patients/{patient_id}/screenings", json=screening_body(), headers=therapist
    )
    assert response.status_code == 201, response.text


# -- review and consent ----------------------------------------------------------------------


@pytest.fixture
def pending_review(client: TestClient, therapist: Headers, patient_id: str) -> str:
    response = client.post(
        f"/patients/{patient_id}/screenings", json=screening_body(), headers=therapist
    )
    assert response.json()["outcome"] == "needs_review"
    screening_id: str = response.json()["screening_id"]
    return screening_id


REVIEW_CASES: list[tuple[str, Body, str]] = [
    ("missing decision", {"reason": "risk_mitigated"}, "decision"),
    ("missing reason", {"decision": "approve"}, "reason"),
    ("unknown decision", {"decision": "maybe", "reason": "risk_mitigated"}, "decision"),
    ("free-text reason", {"decision": "approve", "reason": "seems fine to me"}, "reason"),
    (
        "extra field",
        {"decision": "approve", "reason": "risk_mitigated", "override": True},
        "override",
    ),
]


@pytest.mark.parametrize(
    ("body", "field"), [pytest.param(b, f, id=name) for name, b, f in REVIEW_CASES]
)
def test_review_rejects_bad_input_and_leaves_the_screening_undecided(
    client: TestClient,
    prescriber: Headers,
    patient_id: str,
    pending_review: str,
    counts: Counts,
    db: Path,
    body: Body,
    field: str,
) -> None:
    before = counts()

    response = client.post(
        f"/patients/{patient_id}/screenings/{pending_review}/review", json=body, headers=prescriber
    )

    assert_422_naming(response, field)
    assert counts() == before
    assert rows(db, "SELECT outcome, review_decision, reviewed_by FROM screenings") == [
        ("needs_review", None, None)
    ]


CONSENT_CASES: list[tuple[str, Body, str]] = [
    ("missing scope", {"granted": True}, "scope"),
    ("missing granted", {"scope": "treatment"}, "granted"),
    ("unknown scope", {"scope": "marketing", "granted": True}, "scope"),
    ("granted not a boolean", {"scope": "treatment", "granted": "perhaps"}, "granted"),
    ("extra field", {"scope": "treatment", "granted": True, "witness": "x"}, "witness"),
]


@pytest.mark.parametrize(
    ("body", "field"), [pytest.param(b, f, id=name) for name, b, f in CONSENT_CASES]
)
def test_consent_rejects_bad_input_storing_nothing(
    client: TestClient,
    therapist: Headers,
    patient_id: str,
    counts: Counts,
    body: Body,
    field: str,
) -> None:
    before = counts()

    response = client.post(f"/patients/{patient_id}/consents", json=body, headers=therapist)

    assert_422_naming(response, field)
    assert counts() == before


def test_register_patient_rejects_the_wildcard_as_a_site_id(
    client: TestClient, referral: Body, counts: Counts
) -> None:
    referral["site_id"] = "*"

    response = client.post("/patients", json=referral, headers=token("adm-1", "admin", ["*"]))

    assert_422_naming(response, "site_id")
    assert counts()["outbox_messages"] == 0
