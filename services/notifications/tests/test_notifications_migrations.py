"""The Alembic revisions build exactly the schema the models describe (SQLite
here; the end-to-end suite runs the service migrated on PostgreSQL too)."""

from __future__ import annotations

import asyncio
from pathlib import Path

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import MetaData, inspect
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import create_async_engine

from kap_notifications.adapters.tables import REGISTRY
from kap_shared.db import PLATFORM_REGISTRY
from kap_shared.migrations import migrations_dir, upgrade


async def _diff_and_tables(url: str) -> tuple[list[object], set[str]]:
    combined = MetaData()
    for metadata in (PLATFORM_REGISTRY.metadata, REGISTRY.metadata):
        for table in metadata.tables.values():
            table.to_metadata(combined)

    def compare(connection: Connection) -> tuple[list[object], set[str]]:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        return list(compare_metadata(context, combined)), set(inspect(connection).get_table_names())

    engine = create_async_engine(url)
    async with engine.connect() as connection:
        result = await connection.run_sync(compare)
    await engine.dispose()
    return result


def test_migrations_build_the_models_schema(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'migrated.db'}"
    upgrade(url, migrations_dir("kap_notifications"))
    upgrade(url, migrations_dir("kap_notifications"))  # idempotent: a restart migrates nothing

    diffs, tables = asyncio.run(_diff_and_tables(url))

    assert diffs == []
    assert {
        "notifications",
        "recipients",
        "recipient_sites",
        "care_teams",
        "session_teams",
        "escalation_policies",
        "alerts",
        "outbox_messages",
        "inbox_messages",
        "scheduled_jobs",
    } <= tables
