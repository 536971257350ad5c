"""Each service's Alembic revisions build exactly the schema its models describe,
on SQLite and on PostgreSQL, so `make migration` drift is caught here."""

from __future__ import annotations

import asyncio

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import MetaData
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import create_async_engine

from kap_shared.db import PLATFORM_REGISTRY
from kap_shared.migrations import migrations_dir, upgrade

SERVICES_WITH_MIGRATIONS = {
    "kap_intake": "kap_intake.adapters.tables",
    "kap_scheduling": "kap_scheduling.adapters.tables",
    "kap_monitoring": "kap_monitoring.adapters.tables",
    "kap_notifications": "kap_notifications.adapters.tables",
    "kap_records": "kap_records.adapters.tables",
}


def _metadata(tables_module: str) -> list[MetaData]:
    module = __import__(tables_module, fromlist=["REGISTRY"])
    return [PLATFORM_REGISTRY.metadata, module.REGISTRY.metadata]


async def _diff(url: str, metadatas: list[MetaData]) -> list[object]:
    engine = create_async_engine(url)

    combined = MetaData()
    for metadata in metadatas:
        for table in metadata.tables.values():
            table.to_metadata(combined)

    def compare(connection: Connection) -> list[object]:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        return list(compare_metadata(context, combined))

    async with engine.connect() as connection:
        diffs = await connection.run_sync(compare)
    await engine.dispose()
    return diffs


@pytest.mark.parametrize("package", sorted(SERVICES_WITH_MIGRATIONS))
def test_migrations_build_the_models_schema(package: str, database_url: str) -> None:
    upgrade(database_url, migrations_dir(package))
    upgrade(database_url, migrations_dir(package))  # idempotent: a restart migrates nothing
    metadatas = _metadata(SERVICES_WITH_MIGRATIONS[package])
    assert asyncio.run(_diff(database_url, metadatas)) == []
