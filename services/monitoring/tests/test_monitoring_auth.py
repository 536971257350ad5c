"""Authentication and authorization (CONTRACT section 4) on every endpoint: 401 for
a missing or bad token, 403 for another site or a role not allowed. A refused
request stores and publishes nothing."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from fastapi.testclient import TestClient

from kap_shared.testing import token
from kap_shared.testing_ops import BadTokens, Endpoint, call

from .conftest import (
    OTHER_SITE,
    SIGNED,
    SITE,
    Counts,
    Monitoring,
    assert_error,
)

ROLES = ("prescriber", "nurse", "therapist", "coordinator", "admin", "device")
ALLOWED: dict[str, set[str]] = {
    "get": {"prescriber", "nurse", "therapist", "coordinator", "admin"},
    "vitals": {"prescriber", "nurse", "device"},
    "dose": {"prescriber", "nurse"},
    "decision": {"prescriber"},
    "discharge": {"prescriber", "nurse"},
    "resolve": {"prescriber"},
    "concern": {"prescriber"},
    # The route lets nurses try; the site's discharge_signer_roles decide (409 otherwise).
    "assess": {"prescriber", "nurse"},
    "measures": {"prescriber", "nurse", "therapist", "coordinator"},
}


@pytest.fixture
def endpoints(open_session: Callable[..., str], mon: Monitoring) -> dict[str, Endpoint]:
    """A window awaiting a pre-dose decision, with an open alert to resolve."""
    open_session()
    [alert] = mon.ok_vitals(bp_systolic=150, bp_diastolic=95)["alerts"]
    item9 = {"instrument": "PHQ-9", "items": [1] * 9, "session_id": "ses-1"}
    assert (
        mon.client.post("/patients/pt-1/measures", json=item9, headers=mon.headers).status_code
        == 201
    )
    [concern] = mon.session()["open_safety_concerns"]
    return {
        "get": ("GET", "/sessions/ses-1", None),
        "vitals": ("POST", "/sessions/ses-1/vitals", {"heart_rate": 80}),
        "dose": (
            "POST",
            "/sessions/ses-1/doses",
            {"route": "iv", "agent": "ketamine", "dose_mg": 35},
        ),
        "decision": (
            "POST",
            "/sessions/ses-1/predose-decision",
            {"decision": "proceed", "reason": "benefit_outweighs_risk"},
        ),
        "discharge": ("POST", "/sessions/ses-1/discharge", None),
        "resolve": (
            "POST",
            f"/sessions/ses-1/alerts/{alert['alert_id']}/resolve",
            {"reason": "values_accepted_by_prescriber"},
        ),
        "concern": (
            "POST",
            f"/sessions/ses-1/safety-concerns/{concern['concern_id']}/resolve",
            {"decision": "risk_assessed_continue"},
        ),
        "assess": ("POST", "/sessions/ses-1/stability-assessment", SIGNED),
        "measures": ("POST", "/patients/pt-1/measures", {"instrument": "GAD-7", "items": [1] * 7}),
    }


class TestBadTokens(BadTokens):
    names = list(ALLOWED)


MATRIX = [(name, role) for name in ALLOWED for role in ROLES]


@pytest.mark.parametrize(("name", "role"), MATRIX, ids=[f"{n}-{r}" for n, r in MATRIX])
def test_roles_per_endpoint(
    client: TestClient, endpoints: dict[str, Endpoint], counts: Counts, name: str, role: str
) -> None:
    before = counts()
    response = call(client, endpoints[name], token(f"{role}-1", role, [SITE]))
    if role in ALLOWED[name]:
        assert response.status_code not in (401, 403, 422), response.text
    else:
        error = assert_error(response, 403, "forbidden")
        assert role in error["message"]
        assert counts() == before


@pytest.mark.parametrize("name", list(ALLOWED))
def test_403_for_a_caller_of_another_site(
    client: TestClient, endpoints: dict[str, Endpoint], counts: Counts, name: str
) -> None:
    role = sorted(ALLOWED[name])[0]
    before = counts()
    response = call(client, endpoints[name], token(f"{role}-b", role, [OTHER_SITE]))
    error = assert_error(response, 403, "forbidden")
    assert SITE in error["message"]
    assert counts() == before


@pytest.mark.parametrize("name", list(ALLOWED))
def test_a_wildcard_site_token_is_honoured_only_for_admin(
    client: TestClient, endpoints: dict[str, Endpoint], name: str
) -> None:
    # CONTRACT 6.4: '*' reaches every site for admin; any other role with '*' is 403.
    role = sorted(ALLOWED[name])[0]
    response = call(client, endpoints[name], token(f"{role}-all", role, ["*"]))
    if role == "admin":
        assert response.status_code not in (401, 403), response.text
    else:
        assert_error(response, 403, "forbidden")


def test_a_prescriber_decision_and_resolution_record_who_made_them(
    client: TestClient, endpoints: dict[str, Endpoint]
) -> None:
    headers = token("rx-zed", "prescriber", [SITE])
    assert call(client, endpoints["decision"], headers).json()["decided_by"] == "rx-zed"


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("GET", "/sessions/nope", None),
        ("POST", "/sessions/nope/vitals", {"heart_rate": 80}),
        ("POST", "/sessions/nope/doses", {"route": "iv", "agent": "ketamine", "dose_mg": 35}),
        ("POST", "/sessions/nope/predose-decision", {"decision": "defer", "reason": "other"}),
        ("POST", "/sessions/nope/discharge", None),
        ("POST", "/sessions/nope/alerts/a-1/resolve", {"reason": "artifact"}),
        ("POST", "/sessions/nope/safety-concerns/c-1/resolve", {"decision": "other"}),
        ("POST", "/sessions/nope/stability-assessment", SIGNED),
        ("POST", "/patients/nope/measures", {"instrument": "GAD-7", "items": [1] * 7}),
    ],
)
def test_404_for_what_monitoring_does_not_know(
    client: TestClient, counts: Counts, method: str, path: str, body: dict[str, Any] | None
) -> None:
    before = counts()
    response = client.request(method, path, json=body, headers=token("rx-1", "prescriber", [SITE]))
    assert_error(response, 404, "not_found")
    assert counts() == before
