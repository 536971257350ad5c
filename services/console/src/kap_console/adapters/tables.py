"""The console's own database: sign-in sessions only, never clinical state.

Shared by the replicas (PostgreSQL in production), so any replica serves any
signed-in clinician: no sticky sessions. The key is a hash of the cookie's random
session id, so the table alone does not let anyone present a cookie."""

from __future__ import annotations

from typing import Any

from sqlmodel import Field, SQLModel

from kap_shared.db import json_column, service_registry

CONSOLE_REGISTRY = service_registry()


class ConsoleTable(SQLModel, registry=CONSOLE_REGISTRY):
    pass


class SignInRow(ConsoleTable, table=True):
    __tablename__ = "sign_in_sessions"

    session_key: str = Field(primary_key=True, max_length=64)  # sha256 of the cookie's id
    token: str  # the clinician's bearer token: server-side only, never sent to the browser
    principal: dict[str, Any] = json_column()
    csrf: str = Field(max_length=64)
    expires_at: float = Field(index=True)  # epoch seconds


class PendingLoginRow(ConsoleTable, table=True):
    """An OpenID Connect authorization request waiting for the IdP's redirect (the
    redirect may reach another replica)."""

    __tablename__ = "pending_logins"

    state_key: str = Field(primary_key=True, max_length=64)  # sha256 of `state`
    code_verifier: str
    nonce: str
    next_path: str
    expires_at: float = Field(index=True)
