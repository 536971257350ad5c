"""FastAPI dependencies that enforce authentication, role and site."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated

from fastapi import Depends, HTTPException, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from ..events.enums import Role
from .tokens import InvalidToken, Principal, TokenVerifier

_bearer = HTTPBearer(auto_error=False, description="JWT with claims sub, role, sites")


def current_principal(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Principal:
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise HTTPException(401, "missing bearer token", headers={"WWW-Authenticate": "Bearer"})
    verifier: TokenVerifier = request.app.state.token_verifier
    try:
        principal = verifier.verify(credentials.credentials)
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


def require_roles(*roles: Role) -> Callable[..., Principal]:
    """A dependency: the caller must hold one of `roles` (403 otherwise)."""
    allowed = frozenset(roles)

    def dependency(principal: Annotated[Principal, Depends(current_principal)]) -> Principal:
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
