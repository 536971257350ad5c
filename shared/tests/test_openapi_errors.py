"""The platform's statuses in every route's OpenAPI (kap_shared.http.openapi)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, FastAPI

from kap_shared.auth import Principal, require_roles
from kap_shared.events.enums import Role
from kap_shared.http.openapi import document_platform_errors, error_responses
from kap_shared.testing import assert_openapi_errors

Nurse = Annotated[Principal, Depends(require_roles(Role.NURSE))]


def build() -> FastAPI:
    router = APIRouter()

    @router.get("/public")
    def public() -> dict[str, str]:
        return {}

    @router.get("/mine")
    def mine(_: Nurse) -> dict[str, str]:
        return {}

    @router.post("/things/{thing_id}", responses=error_responses(404, 409))
    def act(thing_id: str, _: Nurse) -> dict[str, str]:
        return {"thing_id": thing_id}

    app = FastAPI()
    document_platform_errors(router.routes)
    app.include_router(router)
    return app


def test_statuses_follow_what_each_route_needs() -> None:
    assert_openapi_errors(
        build().openapi(),
        {
            "GET /public": {503},  # no token, no input: only "not ready"
            "GET /mine": {401, 403, 503},  # a token, no input
            "POST /things/{thing_id}": {401, 403, 404, 409, 422, 503},
        },
    )


def test_documenting_twice_changes_nothing() -> None:
    router = APIRouter()

    @router.get("/x/{x}")
    def x(x: str) -> None:
        return None

    document_platform_errors(router.routes)
    once = dict(router.routes[0].responses)  # type: ignore[attr-defined]
    document_platform_errors(router.routes)
    assert router.routes[0].responses == once  # type: ignore[attr-defined]
    assert sorted(once) == [422, 503]
