"""A throw-away service table and helpers for the messaging tests (real SQLite files)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker
from sqlmodel import Field, SQLModel, col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from kap_shared.db import create_engine, create_tables, service_registry
from kap_shared.messaging.inbox import InboxMessage
from kap_shared.messaging.outbox import OutboxMessage

TEST_REGISTRY = service_registry()


class ServiceTable(SQLModel, registry=TEST_REGISTRY):
    """Base of this test service's own tables."""


class CareTask(ServiceTable, table=True):
    """State a handler or command writes in the same transaction as its events."""

    __tablename__ = "care_tasks"

    id: int | None = Field(default=None, primary_key=True)
    patient_id: str
    kind: str


Sessions = async_sessionmaker[AsyncSession]


async def outbox_rows(sessions: Sessions) -> list[OutboxMessage]:
    async with sessions() as session:
        return list(await session.exec(select(OutboxMessage).order_by(col(OutboxMessage.seq))))


async def inbox_rows(sessions: Sessions) -> list[InboxMessage]:
    async with sessions() as session:
        return list(await session.exec(select(InboxMessage)))


async def care_tasks(sessions: Sessions) -> list[CareTask]:
    async with sessions() as session:
        return list(await session.exec(select(CareTask).order_by(col(CareTask.id))))


@asynccontextmanager
async def engine_with_tables(url: str) -> AsyncIterator[AsyncEngine]:
    """An engine on `url` with this test service's tables, disposed afterwards."""
    engine = create_engine(url)
    await create_tables(engine, [TEST_REGISTRY.metadata])
    try:
        yield engine
    finally:
        await engine.dispose()
