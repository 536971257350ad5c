"""Idempotent requests (CONTRACT 6.4): the stored first response of a request
that carried an `Idempotency-Key`, committed in the SAME transaction as the
request's effect.

How it fits together (the HTTP side is `kap_shared.http.idempotency`):

* the middleware opens a `RequestScope` for a POST with the header, and the
  route's `IdempotencyKey` dependency arms it;
* while armed, `UnitOfWork.commit()` only flushes and hands its session to the
  scope (`hold`): the effect and its outbox rows are written but not committed;
* once the route has produced its response, the middleware calls `complete`,
  which adds the `IdempotencyRecord` (status and body) to the held session and
  commits everything at once. Only then is the response sent.

So there is no moment at which the effect is durable and its response is not:
a crash before the commit loses both (the client retries and the request runs
again), a crash after it keeps both (the retry gets the stored response).
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Callable
from contextvars import ContextVar
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy import Column, LargeBinary
from sqlmodel import Field
from sqlmodel.ext.asyncio.session import AsyncSession

from ..db import PlatformTable
from ..events.envelope import utc_now

if TYPE_CHECKING:
    from .unit_of_work import UnitOfWork


class IdempotencyRecord(PlatformTable, table=True):
    """One request per (caller, key): what it was (a hash) and what it answered."""

    __tablename__ = "idempotency_keys"

    caller: str = Field(primary_key=True, max_length=128)
    key: str = Field(primary_key=True, max_length=255)
    request_hash: str = Field(max_length=64)
    method: str = Field(max_length=8)
    path: str = Field(max_length=512)
    status_code: int
    content_type: str = Field(max_length=128)
    body: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    created_at: datetime = Field(default_factory=utc_now, index=True)


def request_hash(method: str, path: str, query: bytes, body: bytes) -> str:
    """Same key with another method, path, query or body is another request."""
    digest = hashlib.sha256()
    for part in (method.encode(), path.encode(), query, body):
        digest.update(len(part).to_bytes(8, "big"))
        digest.update(part)
    return digest.hexdigest()


@dataclass
class RequestScope:
    """One HTTP request that carried an Idempotency-Key."""

    caller: str
    key: str
    request_hash: str
    method: str
    path: str
    # Set by the route's dependency: only routes that declare the header defer commits.
    armed: bool = False
    task: asyncio.Task[object] | None = None
    held: list[UnitOfWork] = field(default_factory=list)
    # Run once the held work is committed or rolled back (e.g. release a write lock).
    finally_: list[Callable[[], None]] = field(default_factory=list)

    def arm(self) -> None:
        self.armed = True
        self.task = asyncio.current_task()

    def defers(self) -> bool:
        """True inside the armed route's own task (never in tasks it spawned)."""
        return self.armed and self.task is asyncio.current_task()

    def hold(self, uow: UnitOfWork) -> None:
        if uow not in self.held:
            self.held.append(uow)

    def join(self, row: object) -> bool:
        """Add a row to the held transaction, so it commits with the request's effect;
        False when nothing is held. A second writer would wait on the held one's lock
        (SQLite has one writer), so writes made after the effect must join it."""
        if not self.held:
            return False
        self.held[0].session.add(row)
        return True

    async def complete(self, status_code: int, content_type: str, body: bytes) -> None:
        """Store the response with the effect and commit both (raises on a conflict:
        another request with the same key committed first)."""
        if not self.held:
            return
        first, *others = self.held
        first.session.add(
            IdempotencyRecord(
                caller=self.caller,
                key=self.key,
                request_hash=self.request_hash,
                method=self.method,
                path=self.path[:512],
                status_code=status_code,
                content_type=content_type[:128],
                body=body,
            )
        )
        try:
            for uow in (first, *others):
                await uow.finish_deferred()
        finally:
            await self.discard()

    async def discard(self) -> None:
        """Roll back whatever is still held (the route failed), then run `finally_`."""
        held, self.held = self.held, []
        try:
            for uow in held:
                await uow.abandon_deferred()
        finally:
            callbacks, self.finally_ = self.finally_, []
            for callback in callbacks:
                callback()


CURRENT: ContextVar[RequestScope | None] = ContextVar("kap_idempotent_request", default=None)


def deferring_scope() -> RequestScope | None:
    """The armed scope of the current request, if this task must defer its commit."""
    scope = CURRENT.get()
    return scope if scope is not None and scope.defers() else None


async def stored(session: AsyncSession, caller: str, key: str) -> IdempotencyRecord | None:
    return await session.get(IdempotencyRecord, (caller, key))


class HeldUntilCommit:
    """`async with HeldUntilCommit(lock):` - like `async with lock:`, except that in a
    keyed request whose commit was deferred, the lock is released only after that
    commit: whoever waits for it then sees the committed state (scheduling's booking
    lock)."""

    def __init__(self, lock: asyncio.Lock) -> None:
        self._lock = lock

    async def __aenter__(self) -> None:
        await self._lock.acquire()

    async def __aexit__(self, *exc_info: object) -> None:
        # released whether or not the block raised: the scope's commit decides what stands
        scope = deferring_scope()
        if scope is not None and scope.held:
            scope.finally_.append(self._lock.release)
        else:
            self._lock.release()
