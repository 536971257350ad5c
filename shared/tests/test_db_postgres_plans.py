"""kap_shared.db.planned_for_each_execution on PostgreSQL: statements inside are planned
for their values at every execution, never with a generic plan cached earlier, and the
rest of the transaction keeps PostgreSQL's default.

asyncpg prepares each statement once per connection. After five executions PostgreSQL
may switch a prepared statement to a generic plan, made once with the statistics of
that moment and kept until the table is next analyzed. Made while a table is still
(nearly) empty, a new clinic's database or a fresh deployment, that plan can be a
sequential scan: under the alert benchmark on PostgreSQL, monitoring's stored-readings
check scanned the whole readings table on every vitals batch (auto_explain: `Seq Scan`,
its cost frozen while the table grew), 20-80 ms a batch and half of PostgreSQL's CPU
(bench/README.md, round 15)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from kap_local.postgres import LocalPostgres
from kap_shared.db import create_engine, planned_for_each_execution
from kap_shared.settings import async_database_url

IDS = tuple(f"r-{n}" for n in range(20))
# The shape of monitoring's check (adapters.store.existing_readings): ids in an IN list.
LOOKUP = "SELECT reading_id FROM grown WHERE reading_id IN ({})".format(  # noqa: S608
    ", ".join(f"${n + 1}" for n in range(len(IDS)))
)


@pytest.fixture
async def engine(postgres: LocalPostgres) -> AsyncIterator[AsyncEngine]:
    database = postgres.create_database(f"plans_{uuid.uuid4().hex}")
    engine = create_engine(async_database_url(database))
    async with engine.begin() as connection:
        await connection.execute(
            text("CREATE TABLE grown (reading_id VARCHAR(100) PRIMARY KEY, session_id TEXT)")
        )
    try:
        yield engine
    finally:
        await engine.dispose()


async def _plans(connection: AsyncConnection) -> list[tuple[int, int]]:
    """(generic, custom) plans the look-up's prepared statement has run with."""
    result = await connection.execute(
        text(
            "SELECT generic_plans, custom_plans FROM pg_prepared_statements"
            " WHERE statement LIKE 'SELECT reading_id FROM grown%'"
        )
    )
    return [(int(generic), int(custom)) for generic, custom in result]


async def _plan_cache_mode(connection: AsyncConnection) -> str:
    return str((await connection.execute(text("SHOW plan_cache_mode"))).scalar_one())


async def test_a_look_up_on_an_empty_table_is_never_given_a_generic_plan(
    engine: AsyncEngine,
) -> None:
    async with engine.connect() as connection:
        for _ in range(10):  # twice the five executions after which PostgreSQL may switch
            async with planned_for_each_execution(connection):
                await connection.exec_driver_sql(LOOKUP, IDS)
            assert await _plan_cache_mode(connection) == "auto"  # the rest: the default
            await connection.commit()
        # One prepared statement (asyncpg's cache), each execution planned afresh.
        assert await _plans(connection) == [(0, 10)]


async def test_without_it_postgresql_switches_that_look_up_to_a_generic_plan(
    engine: AsyncEngine,
) -> None:
    """What the helper prevents: the same statement, the same empty table."""
    async with engine.connect() as connection:
        for _ in range(10):
            await connection.exec_driver_sql(LOOKUP, IDS)
            await connection.commit()
        generic, custom = (await _plans(connection))[0]
    assert (generic, custom) == (5, 5)
