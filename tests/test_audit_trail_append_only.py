"""Intake's PHI access trail is append-only in the database its migrations build:
UPDATE, DELETE (and on PostgreSQL TRUNCATE) are refused, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import create_async_engine

from kap_shared.migrations import migrations_dir, upgrade

INSERT = text(
    "INSERT INTO audit_records (audit_id, at, actor, role, actor_sites, site_id, patient_id,"
    " action, resource, method, path, status, outcome)"
    " VALUES ('a-1', CURRENT_TIMESTAMP, 'rn-1', 'nurse', '[]', 'site-a', 'pt-1', 'read',"
    " 'patient', 'GET', '/patients/pt-1', 200, 'allowed')"
)
LONG_VALUES = text(
    "INSERT INTO audit_records (audit_id, at, actor, role, actor_sites, site_id, patient_id,"
    " action, resource, method, path, status, outcome, request_id)"
    " VALUES ('a-2', CURRENT_TIMESTAMP, :long, 'nurse', '[]', :long, :long, 'read',"
    " 'patient', 'GET', :long, 404, 'not_found', :long)"
)
CHANGES = {
    "update": "UPDATE audit_records SET actor = 'someone-else'",
    "delete": "DELETE FROM audit_records",
    "truncate": "TRUNCATE audit_records",
}


async def _insert_then_try(url: str, changes: list[str]) -> list[tuple[object, ...]]:
    engine = create_async_engine(url)
    try:
        async with engine.begin() as connection:
            await connection.execute(INSERT)
            # Whatever a caller sent (a 300-character id or X-Request-ID) is recorded,
            # never a reason for the record, and so the response, to fail.
            await connection.execute(LONG_VALUES, {"long": "x" * 300})
        for change in changes:
            with pytest.raises(DBAPIError, match="append-only"):
                async with engine.begin() as connection:
                    await connection.execute(text(CHANGES[change]))
        async with engine.connect() as connection:
            result = await connection.execute(
                text("SELECT actor FROM audit_records WHERE audit_id = 'a-1'")
            )
            return [tuple(row) for row in result]
    finally:
        await engine.dispose()


def test_the_migrated_trail_refuses_updates_and_deletes(database_url: str) -> None:
    changes = list(CHANGES)
    if database_url.startswith("sqlite"):
        changes.remove("truncate")  # SQLite has no TRUNCATE
    upgrade(database_url, migrations_dir("kap_intake"))

    assert asyncio.run(_insert_then_try(database_url, changes)) == [("rn-1",)]
