"""Server-side sign-in sessions: the browser holds only a random session id.

The clinician's bearer token never reaches the browser: it stays in the console's
own database (`adapters/tables.py`), keyed by a hash of an unguessable id sent as an
HttpOnly, Secure, SameSite=Lax cookie. Each session carries its own CSRF token,
which every form and htmx request echoes back (the token is bound to the session).

Replicas share the database, so any replica serves any clinician (no sticky
sessions) and a restart signs nobody out. Expired rows are deleted as new sessions
are created. Nothing clinical is stored here.
"""

from __future__ import annotations

import hashlib
import secrets
import time
from dataclasses import dataclass, field

from sqlalchemy import Delete, delete
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from kap_shared.auth import Principal

from .tables import PendingLoginRow, SignInRow


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


async def _delete(db: AsyncSession, statement: Delete) -> int:
    """Rows deleted (on the session's connection: in its transaction)."""
    result = await (await db.connection()).execute(statement)
    return result.rowcount


def _key(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


class SessionStore:
    def __init__(self, sessions: async_sessionmaker[AsyncSession], ttl_seconds: int) -> None:
        self._sessions = sessions
        self._ttl = ttl_seconds

    async def create(
        self, token: str, principal: Principal, expires_at: float | None = None
    ) -> str:
        session_id = secrets.token_urlsafe(32)
        now = time.time()
        limit = now + self._ttl
        sign_in = SignIn(token, principal, min(limit, expires_at) if expires_at else limit)
        async with self._sessions() as db:
            await _delete(db, delete(SignInRow).where(col(SignInRow.expires_at) <= now))
            db.add(
                SignInRow(
                    session_key=_key(session_id),
                    token=sign_in.token,
                    principal=principal.model_dump(mode="json"),
                    csrf=sign_in.csrf,
                    expires_at=sign_in.expires_at,
                )
            )
            await db.commit()
        return session_id

    async def get(self, session_id: str | None) -> SignIn | None:
        if not session_id:
            return None
        async with self._sessions() as db:
            row = await db.get(SignInRow, _key(session_id))
        if row is None or row.expires_at <= time.time():
            return None
        return SignIn(row.token, Principal.model_validate(row.principal), row.expires_at, row.csrf)

    async def drop(self, session_id: str | None) -> None:
        if not session_id:
            return
        async with self._sessions() as db:
            await _delete(
                db, delete(SignInRow).where(col(SignInRow.session_key) == _key(session_id))
            )
            await db.commit()

    async def remember_login(self, state: str, pending: PendingLogin) -> None:
        async with self._sessions() as db:
            await _delete(
                db, delete(PendingLoginRow).where(col(PendingLoginRow.expires_at) <= time.time())
            )
            db.add(
                PendingLoginRow(
                    state_key=_key(state),
                    code_verifier=pending.code_verifier,
                    nonce=pending.nonce,
                    next_path=pending.next_path,
                    expires_at=pending.expires_at,
                )
            )
            await db.commit()

    async def take_login(self, state: str) -> PendingLogin | None:
        """Once only: the row is deleted as it is read (a replayed redirect finds
        nothing, even on another replica)."""
        async with self._sessions() as db:
            row = (
                await db.exec(
                    select(PendingLoginRow).where(PendingLoginRow.state_key == _key(state))
                )
            ).first()
            if row is None:
                return None
            taken = await _delete(
                db, delete(PendingLoginRow).where(col(PendingLoginRow.state_key) == row.state_key)
            )
            await db.commit()
        if taken != 1 or row.expires_at <= time.time():
            return None
        return PendingLogin(row.code_verifier, row.nonce, row.next_path, row.expires_at)
