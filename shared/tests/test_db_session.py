"""kap_shared.db.PlatformSession: the connection of a transaction is found once, and a
transaction that ended, failed or was replaced never hands back a stale one."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError, PendingRollbackError
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlmodel import Field, SQLModel

from kap_shared.db import PlatformSession, create_engine, service_registry, session_factory


class _Table(SQLModel, registry=service_registry()):
    """Base of this test's table."""


class Row(_Table, table=True):
    """The test table as an ORM row (a flush can fail on it)."""

    __tablename__ = "t"
    n: int = Field(primary_key=True)


@pytest.fixture
async def engine(tmp_path: Path) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 's.db'}")
    async with engine.begin() as conn:
        await conn.execute(text("CREATE TABLE t (n INTEGER PRIMARY KEY)"))
    try:
        yield engine
    finally:
        await engine.dispose()


async def test_one_transaction_finds_its_connection_once(
    engine: AsyncEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    session = session_factory(engine)()
    assert isinstance(session, PlatformSession)
    looked_up = 0
    original = session.sync_session.connection

    def counting(*args: object, **kwargs: object) -> object:
        nonlocal looked_up
        looked_up += 1
        return original(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(session.sync_session, "connection", counting)
    async with session:
        first = await session.connection()
        await first.execute(text("INSERT INTO t VALUES (1)"))
        assert await session.connection() is first
        assert await session.connection() is first
        assert looked_up == 1
        await session.commit()
        # a new transaction: SQLAlchemy's path again, and it sees the committed row
        second = await session.connection()
        assert looked_up == 2
        assert (await second.execute(text("SELECT count(*) FROM t"))).scalar_one() == 1


async def test_after_a_rollback_the_next_transaction_does_not_see_the_rolled_back_row(
    engine: AsyncEngine,
) -> None:
    async with session_factory(engine)() as session:
        conn = await session.connection()
        await conn.execute(text("INSERT INTO t VALUES (1)"))
        await session.rollback()
        again = await session.connection()
        assert (await again.execute(text("SELECT count(*) FROM t"))).scalar_one() == 0
        assert again.in_transaction()


async def test_a_failed_transaction_still_needs_its_rollback(engine: AsyncEngine) -> None:
    """A flush that failed leaves the transaction inactive: the kept connection is not
    handed out and SQLAlchemy's own check refuses until the rollback."""
    async with session_factory(engine)() as session:
        await session.connection()
        session.add(Row(n=1))
        await session.flush()
        session.add(Row(n=1))
        with pytest.raises(IntegrityError):
            await session.flush()
        with pytest.raises(PendingRollbackError):
            await session.connection()
        await session.rollback()
        conn = await session.connection()
        assert (await conn.execute(text("SELECT count(*) FROM t"))).scalar_one() == 0


async def test_a_savepoint_is_a_transaction_of_its_own(engine: AsyncEngine) -> None:
    async with session_factory(engine)() as session:
        outer = await session.connection()
        async with session.begin_nested():
            inner = await session.connection()
            await inner.execute(text("INSERT INTO t VALUES (2)"))
        assert inner is outer  # one bind: the savepoint runs on the same connection
        assert await session.connection() is outer
        assert (await outer.execute(text("SELECT count(*) FROM t"))).scalar_one() == 1
