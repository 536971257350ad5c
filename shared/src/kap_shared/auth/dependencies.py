"""FastAPI dependencies that enforce authentication, role and site.

They are `async def` on purpose: FastAPI runs a plain `def` dependency in a worker
thread, a hand-off that cost more than the checks themselves (issue 13's profile).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated

from fastapi import Depends, HTTPException, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.types import Scope

from ..events.enums import Role
from .tokens import InvalidToken, Principal, TokenVerifier

bearer_scheme = HTTPBearer(auto_error=False, description="JWT with claims sub, role, sites")
# Where a request keeps the token it verified, so it is verified once per request
# (the idempotency middleware needs the caller before the route does).
_VERIFIED = "kap_verified_token"


async def verified_principal(scope: Scope, token: str) -> Principal:
    """The principal of `token` (raises InvalidToken), verified once per request."""
    state = scope.setdefault("state", {})
    cached: tuple[str, Principal] | None = state.get(_VERIFIED)
    if cached is not None and cached[0] == token:
        return cached[1]
    verifier: TokenVerifier = scope["app"].state.token_verifier
    principal = await verifier.verify_async(token)
    state[_VERIFIED] = (token, principal)
    return principal


async def _principal_of(
    request: Request, credentials: HTTPAuthorizationCredentials | None
) -> Principal:
    """The caller (401 without a valid bearer token, 403 for a misused wildcard)."""
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise HTTPException(401, "missing bearer token", headers={"WWW-Authenticate": "Bearer"})
    try:
        principal = await verified_principal(request.scope, credentials.credentials)
    except InvalidToken as exc:
        raise HTTPException(
            401, f"invalid token: {exc}", headers={"WWW-Authenticate": "Bearer"}
        ) from exc
    request.state.principal = principal
    if principal.misuses_wildcard:
        raise HTTPException(
            403, f"a '*' site claim is honoured only for role admin, not {principal.role}"
        )
    return principal


async def current_principal(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer_scheme)],
) -> Principal:
    return await _principal_of(request, credentials)


def require_roles(*roles: Role) -> Callable[..., Awaitable[Principal]]:
    """A dependency: the caller must hold one of `roles` (403 otherwise).

    It reads the bearer token itself rather than depending on `current_principal`:
    each level of dependencies costs FastAPI a pass of its dependency solving on every
    request (issue 13's profile), and this one is on every route."""
    allowed = frozenset(roles)

    async def dependency(
        request: Request,
        credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer_scheme)],
    ) -> Principal:
        principal = await _principal_of(request, credentials)
        if principal.role not in allowed:
            raise HTTPException(
                403,
                f"role {principal.role} may not do this (allowed: {', '.join(sorted(allowed))})",
            )
        return principal

    return dependency


def ensure_site(principal: Principal, site_id: str) -> None:
    """403 unless the caller works at `site_id`."""
    if not principal.can_access_site(site_id):
        raise HTTPException(403, f"no access to site {site_id}")
