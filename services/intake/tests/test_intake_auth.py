"""Authentication and authorization (CONTRACT section 4): 401 for a missing or bad
token, 403 for another site or a role not allowed, 404 for an unknown patient.
A refused request stores and publishes nothing."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jwt
import pytest
from fastapi.testclient import TestClient

from kap_shared.events.envelope import utc_now
from kap_shared.testing import TEST_SECRET, token
from kap_shared.testing_ops import BadTokens, Endpoint, assert_error, call

Headers = dict[str, str]
Counts = Callable[[], dict[str, int]]
CallAs = Callable[[str, Headers | None], Any]  # the `call_as` fixture

SCREENING = {
    "route": "iv",
    "phq9": [1, 1, 1, 1, 1, 1, 1, 1, 0],
    "gad7": [1, 1, 1, 1, 1, 1, 1],
    "vitals": {"bp_systolic": 150, "bp_diastolic": 95, "heart_rate": 70},
}
REVIEW = {"decision": "approve", "reason": "benefit_outweighs_risk"}
CONSENT = {"scope": "treatment", "granted": True}


@pytest.fixture
def screening_id(client: TestClient, therapist: Headers, patient_id: str) -> str:
    response = client.post(f"/patients/{patient_id}/screenings", json=SCREENING, headers=therapist)
    assert response.json()["outcome"] == "needs_review"
    sid: str = response.json()["screening_id"]
    return sid


@pytest.fixture
def endpoints(patient_id: str, screening_id: str, referral: dict[str, Any]) -> dict[str, Endpoint]:
    return {
        "register": ("POST", "/patients", referral),
        "get": ("GET", f"/patients/{patient_id}", None),
        "screen": ("POST", f"/patients/{patient_id}/screenings", SCREENING),
        "review": ("POST", f"/patients/{patient_id}/screenings/{screening_id}/review", REVIEW),
        "consent": ("POST", f"/patients/{patient_id}/consents", CONSENT),
    }


@pytest.fixture
def call_as(client: TestClient, endpoints: dict[str, Endpoint]) -> CallAs:
    """Call the endpoint of this name with these headers; the response."""
    return lambda name, headers: call(client, endpoints[name], headers)


ENDPOINTS = ["register", "get", "screen", "review", "consent"]


class TestBadTokens(BadTokens):
    names = ENDPOINTS


def test_token_with_an_unknown_role_is_401(call_as: CallAs) -> None:
    good = {"Authorization": "Bearer " + _raw_token(role="nurse")}
    bad = {"Authorization": "Bearer " + _raw_token(role="janitor")}
    assert call_as("get", good).status_code == 200  # the token itself is fine
    response = call_as("get", bad)
    assert_error(response, 401, "unauthenticated")
    assert "role" in response.json()["error"]["message"]


def _raw_token(role: str) -> str:
    now = int(utc_now().timestamp())
    claims = {"sub": "x", "role": role, "sites": ["site-a"], "iat": now, "exp": now + 600}
    return jwt.encode(claims, TEST_SECRET, algorithm="HS256")


def test_401_comes_before_validation_and_leaks_nothing(client: TestClient) -> None:
    response = client.post("/patients", json={"given_name": ""})
    assert_error(response, 401, "unauthenticated")


@pytest.mark.parametrize("name", ["get", "screen", "review", "consent"])
def test_403_for_a_clinician_of_another_site(call_as: CallAs, counts: Counts, name: str) -> None:
    role = "prescriber" if name == "review" else "therapist"
    site_b = token("th-zed", role, ["site-b"])
    before = counts()

    response = call_as(name, site_b)

    assert_error(response, 403, "forbidden")
    assert counts() == before


def test_403_registering_a_patient_at_a_site_not_in_the_token(
    client: TestClient, therapist: Headers, referral: dict[str, Any], counts: Counts
) -> None:
    referral["site_id"] = "site-b"
    before = counts()

    response = client.post("/patients", json=referral, headers=therapist)

    assert_error(response, 403, "forbidden")
    assert "site-b" in response.json()["error"]["message"]
    assert counts() == before


def test_403_for_a_token_with_no_sites(call_as: CallAs) -> None:
    assert_error(call_as("get", token("th-x", "therapist", [])), 403, "forbidden")


@pytest.mark.parametrize(
    ("name", "role"),
    [
        ("review", "nurse"),
        ("review", "therapist"),
        ("review", "coordinator"),
        ("review", "admin"),
        ("screen", "coordinator"),
        ("screen", "admin"),
        ("screen", "device"),
        ("register", "device"),
        ("get", "device"),
        ("consent", "device"),
    ],
)
def test_403_for_a_role_not_allowed(call_as: CallAs, counts: Counts, name: str, role: str) -> None:
    before = counts()

    response = call_as(name, token(f"{role}-1", role, ["site-a"]))

    assert_error(response, 403, "forbidden")
    assert role in response.json()["error"]["message"]
    assert counts() == before


@pytest.mark.parametrize(
    ("name", "role"),
    [
        ("get", "nurse"),
        ("get", "coordinator"),
        ("get", "admin"),
        ("screen", "nurse"),
        ("screen", "prescriber"),
        ("consent", "coordinator"),
        ("review", "prescriber"),
    ],
)
def test_allowed_roles_at_the_patients_site(call_as: CallAs, name: str, role: str) -> None:
    response = call_as(name, token(f"{role}-1", role, ["site-a"]))
    assert response.status_code in (200, 201), response.text


def test_wildcard_site_token_reaches_every_site(call_as: CallAs) -> None:
    response = call_as("get", token("admin-1", "admin", ["*"]))
    assert response.status_code == 200


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("GET", "/patients/no-such-patient", None),
        ("POST", "/patients/no-such-patient/screenings", SCREENING),
        ("POST", "/patients/no-such-patient/consents", CONSENT),
        ("POST", "/patients/no-such-patient/screenings/s-1/review", REVIEW),
    ],
)
def test_404_for_an_unknown_patient(
    client: TestClient,
    counts: Counts,
    method: str,
    path: str,
    body: dict[str, Any] | None,
) -> None:
    before = counts()
    response = client.request(
        method, path, json=body, headers=token("rx-1", "prescriber", ["site-a"])
    )
    assert_error(response, 404, "not_found")
    assert counts() == before
