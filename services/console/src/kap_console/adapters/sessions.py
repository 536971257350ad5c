"""Server-side sign-in sessions: the browser holds only a random session id.

The clinician's bearer token never reaches the browser: it stays in this store,
keyed by an unguessable id sent as an HttpOnly, Secure, SameSite=Lax cookie.
Each session carries its own CSRF token, which every form and htmx request
echoes back (double submit is not needed: the token is bound to the session).

The store is per process: several replicas need sticky sessions at the ingress
(deploy/k8s sets them) or a shared store; a restart signs everyone out, which
loses no clinical state (the console holds none).
"""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass, field

from kap_shared.auth import Principal


@dataclass
class SignIn:
    token: str
    principal: Principal
    expires_at: float
    csrf: str = field(default_factory=lambda: secrets.token_urlsafe(32))


@dataclass
class PendingLogin:
    """An OpenID Connect authorization request waiting for the IdP's redirect."""

    code_verifier: str
    nonce: str
    next_path: str
    expires_at: float


class SessionStore:
    def __init__(self, ttl_seconds: int) -> None:
        self._ttl = ttl_seconds
        self._sessions: dict[str, SignIn] = {}
        self._pending: dict[str, PendingLogin] = {}

    def create(self, token: str, principal: Principal, expires_at: float | None = None) -> str:
        session_id = secrets.token_urlsafe(32)
        limit = time.time() + self._ttl
        self._sessions[session_id] = SignIn(
            token, principal, min(limit, expires_at) if expires_at else limit
        )
        return session_id

    def get(self, session_id: str | None) -> SignIn | None:
        if not session_id:
            return None
        found = self._sessions.get(session_id)
        if found is None:
            return None
        if found.expires_at <= time.time():
            del self._sessions[session_id]
            return None
        return found

    def drop(self, session_id: str | None) -> None:
        if session_id:
            self._sessions.pop(session_id, None)

    def remember_login(self, state: str, pending: PendingLogin) -> None:
        now = time.time()
        for key in [k for k, v in self._pending.items() if v.expires_at <= now]:
            del self._pending[key]
        self._pending[state] = pending

    def take_login(self, state: str) -> PendingLogin | None:
        pending = self._pending.pop(state, None)
        if pending is None or pending.expires_at <= time.time():
            return None
        return pending
