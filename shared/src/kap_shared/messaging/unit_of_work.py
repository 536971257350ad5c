"""Unit of work: one database transaction holding a state change and the
events it produces (written to the outbox), committed together.

Inside an HTTP request that carries an `Idempotency-Key` (see `idempotency`),
`commit()` defers: the work is flushed and committed a moment later together
with the stored response, so effect and response are durable together."""

from __future__ import annotations

from collections.abc import Callable
from types import TracebackType
from typing import Any, Self

from sqlalchemy import event as sa_event
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlalchemy.orm import Session
from sqlmodel.ext.asyncio.session import AsyncSession

from ..events.envelope import Envelope
from ..logging import get_logger
from ..tracing import current_traceparent
from .idempotency import deferring_scope
from .outbox import OutboxRow, outbox_values, write_outbox

log = get_logger(__name__)

# Called after a commit that wrote outbox rows, with those rows (the relay's `notify`).
OnCommit = Callable[[list[OutboxRow]], None]


def nothing_to_notify(_rows: list[OutboxRow]) -> None:
    """The default `OnCommit`: no relay to wake."""


class UnitOfWork:
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        on_commit: OnCommit = nothing_to_notify,
        *,
        defer_in_keyed_requests: bool = True,
    ) -> None:
        self._sessions = sessions
        self._on_commit = on_commit
        # False for writes that must stand even when the request is refused (e.g. an
        # audit record): they commit at once, keyed request or not.
        self._may_defer = defer_in_keyed_requests
        self._events: list[Envelope] = []
        self._outbox: list[dict[str, Any]] = []  # written at commit, in publish order
        self._written: list[OutboxRow] = []  # ... and as written, for on_commit
        self._session: AsyncSession | None = None
        self._deferred = False

    @property
    def session(self) -> AsyncSession:
        if self._session is None:
            raise RuntimeError("UnitOfWork used outside 'async with'")
        return self._session

    async def __aenter__(self) -> Self:
        self._session = self._sessions()
        self._events = []
        self._outbox = []
        self._written = []
        self._deferred = False
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._deferred:
            return  # the idempotent request's scope commits or rolls back
        # Anything not committed explicitly is rolled back: closing the session ends its
        # transaction (the connection rolls back on its way to the pool) without the ORM's
        # rollback bookkeeping, ~5 % of a read-only request.
        await self.session.close()
        self._session = None

    def publish(self, event: Envelope) -> None:
        """Queue an event; it is stored with the transaction (written at `commit`, one
        statement for all of them) and sent after commit."""
        if self._session is None:
            raise RuntimeError("UnitOfWork used outside 'async with'")
        headers = {"traceparent": tp} if (tp := current_traceparent()) else {}
        self._outbox.append(outbox_values(event, headers))
        self._events.append(event)

    def after_commit(self, callback: Callable[[], None]) -> None:
        """Run `callback` once this transaction has committed (never when it rolls back;
        in a keyed request, when the deferred commit happens). Its errors are logged, not
        raised: the transaction is already durable."""

        def run(_: Session) -> None:
            try:
                callback()
            except Exception as exc:
                log.warning("after_commit.failed", error=repr(exc)[:300])

        sa_event.listen(self.session.sync_session, "after_commit", run, once=True)

    @property
    def published(self) -> list[Envelope]:
        return list(self._events)

    async def commit(self) -> None:
        self._written = await write_outbox(self.session, self._outbox)
        self._outbox = []
        scope = deferring_scope() if self._may_defer else None
        if scope is not None:
            await self.session.flush()  # constraint errors surface in the route, as usual
            self._deferred = True
            scope.hold(self)
            return
        await self.session.commit()
        if self._events:
            self._on_commit(self._written)

    async def finish_deferred(self) -> None:
        """Commit the work `commit()` deferred (with the stored response)."""
        await self.session.commit()
        self._deferred = False
        await self.session.close()
        self._session = None
        if self._events:
            self._on_commit(self._written)

    async def abandon_deferred(self) -> None:
        if self._session is not None:
            await self._session.rollback()
            await self._session.close()
        self._deferred = False
