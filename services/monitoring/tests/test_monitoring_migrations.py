"""Monitoring's Alembic revisions build exactly the schema its models describe, on
SQLite and on PostgreSQL (tests/test_migrations.py covers the services listed
there; this is monitoring's own check), and upgrading twice migrates nothing."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import MetaData, text
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import create_async_engine

from kap_local.postgres import LocalPostgres
from kap_monitoring.adapters.tables import REGISTRY
from kap_shared.db import PLATFORM_REGISTRY
from kap_shared.migrations import migrations_dir, upgrade
from kap_shared.settings import async_database_url


@pytest.fixture(scope="module")
def postgres() -> Iterator[LocalPostgres]:
    with LocalPostgres() as server:
        yield server


async def _diff(url: str) -> list[object]:
    combined = MetaData()
    for metadata in (PLATFORM_REGISTRY.metadata, REGISTRY.metadata):
        for table in metadata.tables.values():
            table.to_metadata(combined)

    def compare(connection: Connection) -> list[object]:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        return list(compare_metadata(context, combined))

    engine = create_async_engine(url)
    async with engine.connect() as connection:
        diffs = await connection.run_sync(compare)
    await engine.dispose()
    return diffs


async def _one_open_alert_per_rule(url: str) -> str:
    """The partial unique index exists: a second open alert for a rule is refused."""
    engine = create_async_engine(url)
    insert = text(
        "INSERT INTO alerts (alert_id, session_id, patient_id, site_id, rule_id, severity, "
        "metric, value, threshold, message, status, raised_at, triggered_at, event_id) VALUES "
        "(:id, 's', 'p', 'x', 'KET-MON-BP', 'critical', 'bp_systolic', 190, 180, 'm', :status, "
        "CURRENT_TIMESTAMP, CURRENT_TIMESTAMP, :id)"
    )
    try:
        async with engine.begin() as conn:
            await conn.execute(insert, {"id": "a1", "status": "resolved"})
            await conn.execute(insert, {"id": "a2", "status": "open"})
            await conn.execute(insert, {"id": "a3", "status": "resolved"})
        async with engine.begin() as conn:
            await conn.execute(insert, {"id": "a4", "status": "open"})
    except Exception as exc:
        return type(exc).__name__
    finally:
        await engine.dispose()
    return "accepted"


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
def test_migrations_build_the_models_schema(
    backend: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    if backend == "sqlite":
        url = f"sqlite+aiosqlite:///{tmp_path / 'migrated.db'}"
    else:
        server: LocalPostgres = request.getfixturevalue("postgres")
        url = async_database_url(server.create_database("mig_monitoring"))
    upgrade(url, migrations_dir("kap_monitoring"))
    upgrade(url, migrations_dir("kap_monitoring"))  # idempotent: a restart migrates nothing
    assert asyncio.run(_diff(url)) == []
    assert asyncio.run(_one_open_alert_per_rule(url)) == "IntegrityError"
