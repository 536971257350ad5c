"""FastAPI auth dependencies and the platform error shape (CONTRACT section 4)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Annotated, Any

import httpx
import pytest
from fastapi import Depends, FastAPI, Query
from pydantic import BaseModel, Field

from kap_shared.auth import (
    Principal,
    TokenVerifier,
    current_principal,
    ensure_site,
    mint_token,
    require_roles,
)
from kap_shared.events.enums import Role, Route
from kap_shared.http.errors import InvalidField, NotFound, RuleViolation, install_error_handlers

SECRET = "unit-test-secret-of-at-least-32-bytes!"


class Baseline(BaseModel):
    phq9_item9: int = Field(ge=0, le=3)


class DoseIn(BaseModel):
    dose_mg: float = Field(gt=0)
    route: Route
    baseline: Baseline | None = None


def build_app() -> FastAPI:
    app = FastAPI()
    app.state.token_verifier = TokenVerifier(hs256_secret=SECRET)
    app.state.stored = []
    install_error_handlers(app)

    @app.get("/me")
    def me(principal: Annotated[Principal, Depends(current_principal)]) -> dict[str, Any]:
        return principal.model_dump(mode="json")

    @app.post("/sites/{site_id}/sessions/{session_id}/doses", status_code=201)
    def record_dose(
        site_id: str,
        session_id: str,
        body: DoseIn,
        principal: Annotated[Principal, Depends(require_roles(Role.PRESCRIBER, Role.NURSE))],
    ) -> dict[str, Any]:
        ensure_site(principal, site_id)
        app.state.stored.append((site_id, session_id, body))
        return {"by": principal.sub, "dose_mg": body.dose_mg}

    @app.post("/sites/{site_id}/sessions")
    def book(
        site_id: str,
        principal: Annotated[Principal, Depends(require_roles(Role.COORDINATOR))],
    ) -> None:
        ensure_site(principal, site_id)
        raise RuleViolation(
            "KAP-1",
            "2 preparation sessions must be completed before dosing",
            details={"completed": 1, "required": 2},
        )

    @app.get("/sessions/{session_id}")
    def get_session(session_id: str, _: Annotated[Principal, Depends(current_principal)]) -> None:
        raise NotFound("session", session_id)

    @app.post("/measures")
    def measures(_: Annotated[Principal, Depends(current_principal)]) -> None:
        raise InvalidField("phq9[8]", "PHQ-9 item 9 must be answered (MBC-1)")

    @app.get("/patients/search")
    def search(
        _: Annotated[Principal, Depends(current_principal)],
        query: Annotated[str, Query(min_length=3)],
    ) -> list[str]:
        return []

    return app


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    app = build_app()
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://test"
    ) as http:
        http.app = app  # type: ignore[attr-defined]
        yield http


def bearer(role: str = "nurse", sites: list[str] | None = None, **kw: Any) -> dict[str, str]:
    token = mint_token(SECRET, sub="rn-joan", role=role, sites=sites or ["site-north"], **kw)
    return {"Authorization": f"Bearer {token}"}


def assert_error_shape(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert set(body) == {"error"}
    error: dict[str, Any] = body["error"]
    assert {"code", "message"} <= set(error) <= {"code", "message", "details"}
    assert error["code"] == code
    assert isinstance(error["message"], str)
    assert error["message"]
    return error


DOSE_URL = "/sites/site-north/sessions/ses-1/doses"
GOOD_DOSE = {"dose_mg": 56, "route": "intranasal_esketamine"}


# --- 401 ----------------------------------------------------------------------------------


async def test_missing_token_is_401_with_error_shape(client: httpx.AsyncClient) -> None:
    response = await client.get("/me")
    assert_error_shape(response, 401, "unauthenticated")
    assert response.headers["www-authenticate"] == "Bearer"


@pytest.mark.parametrize(
    "authorization",
    [
        "Bearer not-a-jwt",
        "Bearer "
        + mint_token("some-other-secret-that-is-32-bytes-long", sub="x", role="admin", sites=["*"]),
        "Bearer " + mint_token(SECRET, sub="x", role="admin", sites=["*"], ttl=timedelta(-1)),
        "Basic cm4tam9hbjpodW50ZXIy",
        "Bearer",
    ],
    ids=["garbage", "wrong-secret", "expired", "basic-auth", "empty-bearer"],
)
async def test_bad_token_is_401(client: httpx.AsyncClient, authorization: str) -> None:
    response = await client.get("/me", headers={"Authorization": authorization})
    assert_error_shape(response, 401, "unauthenticated")


async def test_valid_token_yields_the_principal(client: httpx.AsyncClient) -> None:
    response = await client.get("/me", headers=bearer("therapist", ["site-north", "site-west"]))
    assert response.status_code == 200
    assert response.json() == {
        "sub": "rn-joan",
        "role": "therapist",
        "sites": ["site-north", "site-west"],
    }


async def test_unauthenticated_invalid_body_is_401_not_422(client: httpx.AsyncClient) -> None:
    # Authentication is checked before the body is validated: no schema hints to strangers.
    response = await client.post(DOSE_URL, json={"dose_mg": -1})
    assert_error_shape(response, 401, "unauthenticated")


# --- 403 ----------------------------------------------------------------------------------


@pytest.mark.parametrize("role", ["prescriber", "nurse", "therapist", "coordinator", "device"])
async def test_wildcard_site_claim_on_a_non_admin_role_is_403_everywhere(
    client: httpx.AsyncClient, role: str
) -> None:
    # CONTRACT 6.4: '*' is honoured only for admin; refused even where no site is involved.
    for sites in (["*"], ["site-north", "*"]):
        response = await client.get("/me", headers=bearer(role, sites))
        error = assert_error_shape(response, 403, "forbidden")
        assert "'*'" in error["message"]
        response = await client.post(DOSE_URL, json=GOOD_DOSE, headers=bearer(role, sites))
        assert_error_shape(response, 403, "forbidden")
    assert client.app.state.stored == []  # type: ignore[attr-defined]


async def test_wildcard_site_claim_is_honoured_for_admin(client: httpx.AsyncClient) -> None:
    response = await client.get("/me", headers=bearer("admin", ["*"]))
    assert response.status_code == 200, response.text
    assert response.json()["sites"] == ["*"]


async def test_role_not_allowed_is_403(client: httpx.AsyncClient) -> None:
    response = await client.post(DOSE_URL, json=GOOD_DOSE, headers=bearer("therapist"))
    error = assert_error_shape(response, 403, "forbidden")
    assert "therapist" in error["message"]
    assert client.app.state.stored == []  # type: ignore[attr-defined]


async def test_other_site_is_403(client: httpx.AsyncClient) -> None:
    response = await client.post(DOSE_URL, json=GOOD_DOSE, headers=bearer("nurse", ["site-south"]))
    error = assert_error_shape(response, 403, "forbidden")
    assert "site-north" in error["message"]
    assert client.app.state.stored == []  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("role", "sites"), [("nurse", ["site-north"]), ("prescriber", ["site-north"])]
)
async def test_allowed_role_at_own_site_is_served(
    client: httpx.AsyncClient, role: str, sites: list[str]
) -> None:
    response = await client.post(DOSE_URL, json=GOOD_DOSE, headers=bearer(role, sites))
    assert response.status_code == 201, response.text
    assert response.json() == {"by": "rn-joan", "dose_mg": 56.0}
    assert len(client.app.state.stored) == 1  # type: ignore[attr-defined]


# --- 422 ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"dose_mg": -1, "route": "iv"}, "dose_mg"),
        ({"dose_mg": 40}, "route"),
        ({"dose_mg": 40, "route": "rectal"}, "route"),
        ({"dose_mg": 40, "route": "iv", "baseline": {"phq9_item9": 7}}, "baseline.phq9_item9"),
    ],
)
async def test_invalid_body_is_422_naming_the_field_without_body_prefix(
    client: httpx.AsyncClient, payload: dict[str, Any], field: str
) -> None:
    response = await client.post(DOSE_URL, json=payload, headers=bearer())
    error = assert_error_shape(response, 422, "validation_error")
    assert [d["field"] for d in error["details"]] == [field]
    assert error["details"][0]["message"]
    assert error["message"].startswith(f"{field}: ")
    assert "body." not in error["message"]
    assert client.app.state.stored == [], "nothing is stored on invalid input"  # type: ignore[attr-defined]


async def test_422_lists_every_bad_field(client: httpx.AsyncClient) -> None:
    response = await client.post(DOSE_URL, json={"dose_mg": 0, "route": "x"}, headers=bearer())
    error = assert_error_shape(response, 422, "validation_error")
    assert sorted(d["field"] for d in error["details"]) == ["dose_mg", "route"]


async def test_invalid_field_raised_by_a_handler_is_422_with_details(
    client: httpx.AsyncClient,
) -> None:
    response = await client.post("/measures", headers=bearer())
    error = assert_error_shape(response, 422, "validation_error")
    assert error["details"] == [
        {"field": "phq9[8]", "message": "PHQ-9 item 9 must be answered (MBC-1)"}
    ]


async def test_422_names_a_parameter_called_query(client: httpx.AsyncClient) -> None:
    response = await client.get("/patients/search", params={"query": "ab"}, headers=bearer())
    error = assert_error_shape(response, 422, "validation_error")
    assert [d["field"] for d in error["details"]] == ["query"]


# --- 409, 404 -----------------------------------------------------------------------------


async def test_rule_violation_is_409_with_the_rule_id_as_code(client: httpx.AsyncClient) -> None:
    response = await client.post("/sites/site-north/sessions", headers=bearer("coordinator"))
    error = assert_error_shape(response, 409, "KAP-1")
    assert error["message"].startswith("KAP-1: ")
    assert error["details"] == {"completed": 1, "required": 2}


async def test_not_found_is_404_with_error_shape(client: httpx.AsyncClient) -> None:
    response = await client.get("/sessions/ses-404", headers=bearer())
    error = assert_error_shape(response, 404, "not_found")
    assert "ses-404" in error["message"]


async def test_unknown_route_uses_the_error_shape_too(client: httpx.AsyncClient) -> None:
    response = await client.get("/nope", headers=bearer())
    assert_error_shape(response, 404, "not_found")
