"""Every status an endpoint can return is in its OpenAPI, with the error schema.

Two halves, one vocabulary:

- the statuses the platform itself produces are added to every route by
  `document_platform_errors` (the runtime calls it): 401 and 403 where the route
  needs a token, 422 where it takes input, 503 `not_ready` everywhere;
- the statuses a use case produces are declared on the route:
  `responses=error_responses(404, 409)`.

Both describe the body as `ErrorResponse`, so clients get one schema for every error
(and FastAPI's own `HTTPValidationError` never appears: our handler answers 422 with
the platform shape).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from enum import Enum
from typing import Any, TypeVar

from fastapi import APIRouter
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute
from pydantic import BaseModel, Field
from starlette.routing import BaseRoute

from ..auth.dependencies import bearer_scheme
from .idempotency import IdempotencyKey

_Route = TypeVar("_Route", bound=Callable[..., Any])


class ErrorDetail(BaseModel):
    code: str = Field(
        description="machine-readable: a rule id (409), validation_error, not_found, ..."
    )
    message: str = Field(description="for people; names the field or the rule")
    details: Any = Field(
        default=None,
        description="422: [{field, message}]; 409: what would clear the rule",
    )


class ErrorResponse(BaseModel):
    """The platform's error body: `{"error": {"code", "message", "details"?}}`."""

    error: ErrorDetail


ERROR_DESCRIPTIONS: dict[int, str] = {
    401: "missing, expired or invalid bearer token (`unauthenticated`)",
    403: "the role may not do this, the site is not the caller's, or a `*` site claim "
    "on a role other than admin (`forbidden`)",
    404: "the resource does not exist (`not_found`)",
    409: "a rule forbids the action: `code` is the rule id, `details` what would clear it "
    "(or `idempotency_key_reused`: the same Idempotency-Key with another request)",
    422: "invalid input (`validation_error`): `details[].field` names each field",
    503: "the service is starting and its database is not reachable yet (`not_ready`)",
}

Responses = dict[int | str, dict[str, Any]]
ERROR_SCHEMA_REF = "#/components/schemas/ErrorResponse"


def error_responses(*statuses: int) -> Responses:
    """OpenAPI `responses` for the given error statuses, all with `ErrorResponse`."""
    return {
        status: {
            "model": ErrorResponse,
            "description": ERROR_DESCRIPTIONS[status],
            # Errors are JSON even where the success is not (FHIR JSON, SSE).
            "content": {"application/json": {"schema": {"$ref": ERROR_SCHEMA_REF}}},
        }
        for status in statuses
    }


def keyed_post(
    router: APIRouter,
    path: str,
    view: type[Any],
    *errors: int,
    created: bool = False,
    tags: list[str | Enum] | None = None,
) -> Callable[[_Route], _Route]:
    """A POST that takes an Idempotency-Key (a retry replays the stored response),
    answering `view` (201 when it creates) and documenting the `errors` statuses:
    `@keyed_post(router, "/patients/{patient_id}/consents", ConsentView, 404, created=True)`."""
    return router.post(
        path,
        dependencies=[IdempotencyKey],
        responses=error_responses(*errors),
        status_code=201 if created else 200,
        response_model=view,
        tags=tags,
    )


def _needs_token(dependant: Dependant) -> bool:
    # every authenticating dependency (current_principal, require_roles) reads the bearer
    return any(dep.call is bearer_scheme or _needs_token(dep) for dep in dependant.dependencies)


def _takes_input(dependant: Dependant) -> bool:
    own = (
        dependant.path_params
        or dependant.query_params
        or dependant.header_params
        or dependant.body_params
    )
    return bool(own) or any(_takes_input(dep) for dep in dependant.dependencies)


def _accepts_idempotency_key(dependant: Dependant) -> bool:
    return any(
        dep.call is IdempotencyKey.dependency or _accepts_idempotency_key(dep)
        for dep in dependant.dependencies
    )


def platform_statuses(route: APIRoute) -> list[int]:
    """What the platform (not the use case) may answer on this route."""
    statuses = [401, 403] if _needs_token(route.dependant) else []
    if _accepts_idempotency_key(route.dependant):
        statuses.append(409)  # idempotency_key_reused (CONTRACT 6.4)
    if _takes_input(route.dependant):
        statuses.append(422)
    statuses.append(503)
    return statuses


def document_platform_errors(routes: Iterable[BaseRoute]) -> None:
    """Add the platform's statuses to each route's `responses` (before the router is
    included in the app, which builds the OpenAPI models from them). A route's own
    declaration of a status wins."""
    for route in routes:
        if isinstance(route, APIRoute):
            for status, spec in error_responses(*platform_statuses(route)).items():
                route.responses.setdefault(status, spec)
