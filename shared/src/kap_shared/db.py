"""Database engine and sessions (SQLModel on SQLAlchemy's asyncio API).

Each service owns one database. Its tables live on a registry of its own
(`service_registry()`), so two services' models never collide in one process;
the outbox and inbox tables live on `PLATFORM_REGISTRY` and exist in every
service's database.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import JSON, Column, MetaData
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import (
    AsyncConnection,
    AsyncEngine,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.orm import SessionTransaction, registry
from sqlmodel import Field, SQLModel
from sqlmodel.ext.asyncio.session import AsyncSession

from .db_sqlite import BUSY_TIMEOUT, configure_sqlite

PLATFORM_REGISTRY = registry()


class PlatformTable(SQLModel, registry=PLATFORM_REGISTRY):
    """Base of the tables every service has (outbox, inbox)."""


class ScopeColumns(SQLModel):
    """The envelope's scope a service's row keeps: `patient_id` (indexed: rows are read
    by patient) and `site_id` (requests are authorized by site), 64 characters each, as
    `kap_shared.migrations.patient_and_site` creates them
    (`class Hold(ScopeColumns, SchedulingTable, table=True)`)."""

    patient_id: str = Field(index=True, max_length=64)
    site_id: str = Field(max_length=64)


def json_column(default_factory: Callable[[], Any] | None = None, *, nullable: bool = False) -> Any:
    """A field stored as one JSON value (a list or an object nobody queries inside):
    NOT NULL unless `nullable`, in which case it defaults to None when it has no
    `default_factory`."""
    column = Column(JSON, nullable=nullable)
    if default_factory is not None:
        return Field(default_factory=default_factory, sa_column=column)
    if nullable:
        return Field(default=None, sa_column=column)
    return Field(sa_column=column)


def service_registry() -> registry:
    return registry()


def create_engine(url: str) -> AsyncEngine:
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        # LIFO: the connection used last is used next. SQLite drops a connection's whole
        # page cache when another connection has committed since it last read, so
        # handing out the pool's connections in turn made every transaction start cold
        # (~5,000 page reads a second under the alert benchmark; none with LIFO).
        engine = create_async_engine(
            url, connect_args={"timeout": BUSY_TIMEOUT}, pool_use_lifo=True
        )
        configure_sqlite(engine)
        return engine
    return create_async_engine(url, pool_pre_ping=True, pool_size=10, max_overflow=10)


class PlatformSession(AsyncSession):
    """SQLModel's AsyncSession that hands back the same connection for the rest of a
    transaction. Each `await session.connection()` is otherwise a greenlet spawned to
    find the connection the transaction already holds: ten a `POST .../vitals`, ~5 % of
    its CPU (issue 13). Anything else (other binds, execution options, a transaction
    that ended, failed or was replaced) takes SQLAlchemy's own path."""

    _kept: tuple[SessionTransaction, AsyncConnection] | None = None

    async def connection(
        self,
        bind_arguments: Any = None,
        execution_options: Any = None,
        **kw: Any,
    ) -> AsyncConnection:
        if bind_arguments is not None or execution_options is not None or kw:
            return await super().connection(bind_arguments, execution_options, **kw)
        sync = self.sync_session
        current = sync.get_nested_transaction() or sync.get_transaction()
        kept = self._kept
        if kept is not None and kept[0] is current and current.is_active:
            return kept[1]
        connection = await super().connection()
        # the transaction the call began or joined (kept by reference: never reused)
        transaction = sync.get_nested_transaction() or sync.get_transaction()
        if transaction is not None:
            self._kept = (transaction, connection)
        return connection


def session_factory(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, class_=PlatformSession, expire_on_commit=False)


async def create_tables(engine: AsyncEngine, metadatas: Sequence[MetaData]) -> None:
    """Create missing tables (development and tests; migrations own production)."""
    async with engine.begin() as conn:
        for metadata in (PLATFORM_REGISTRY.metadata, *metadatas):
            await conn.run_sync(metadata.create_all)


@asynccontextmanager
async def planned_for_each_execution(connection: AsyncConnection) -> AsyncIterator[None]:
    """On PostgreSQL, the statements inside (part of the caller's transaction) are planned
    for their values and the table as it is now at every execution.

    asyncpg prepares each statement once per connection, and after five executions
    PostgreSQL may switch it to a generic plan, made once and kept until the table is
    next analyzed. A look-up of many ids (`IN (...)`) planned while its table was still
    (nearly) empty is a sequential scan, and stays one while the table grows: monitoring's
    stored-readings check scanned every reading, 20-80 ms a vitals batch and half of
    PostgreSQL's CPU under the alert benchmark (bench/README.md, round 15). Scoped to the
    statements that need it: planning every statement of a batch cost 12 % of
    monitoring's throughput. If the block fails, the transaction's rollback undoes it."""
    if not is_postgres(connection):
        yield
        return
    await connection.exec_driver_sql("SET LOCAL plan_cache_mode = force_custom_plan")
    yield
    await connection.exec_driver_sql("SET LOCAL plan_cache_mode = DEFAULT")


def is_postgres(bind: AsyncEngine | AsyncConnection | AsyncSession) -> bool:
    """Whether an engine or connection, or the engine a session is bound to, is
    PostgreSQL (where row locks and advisory locks exist; SQLite has one writer and
    needs neither)."""
    if isinstance(bind, AsyncSession):
        return bind.bind is not None and bind.bind.dialect.name == "postgresql"
    return bind.dialect.name == "postgresql"


def append_only_ddl(table: str) -> dict[str, tuple[str, ...]]:
    """Per dialect, the statements after which the database itself refuses to change
    `table` (UPDATE, DELETE; on PostgreSQL also TRUNCATE): for audit trails. The same
    statements serve `create_all` (an `after_create` listener) and the Alembic revision.
    Existing revisions run them, so change a table's triggers with a new revision."""
    refusal = f"'{table} is append-only'"
    return {
        "sqlite": tuple(
            f"CREATE TRIGGER {table}_no_{statement.lower()} BEFORE {statement} ON {table} "
            f"BEGIN SELECT RAISE(ABORT, {refusal}); END"
            for statement in ("UPDATE", "DELETE")
        ),
        "postgresql": (
            f"CREATE OR REPLACE FUNCTION {table}_append_only() RETURNS trigger "
            f"LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION {refusal}; END $$",
            f"CREATE TRIGGER {table}_no_change BEFORE UPDATE OR DELETE ON {table} "
            f"FOR EACH ROW EXECUTE FUNCTION {table}_append_only()",
            f"CREATE TRIGGER {table}_no_truncate BEFORE TRUNCATE ON {table} "
            f"FOR EACH STATEMENT EXECUTE FUNCTION {table}_append_only()",
        ),
    }
