"""Alembic, the same way in every service.

Each service keeps its revisions in `kap_<service>/migrations/` with a
three-line `env.py` that calls `run_env`. The platform's own tables (outbox,
inbox, timers) are the `platform` branch in `kap_shared/platform_migrations/`,
part of every service's history, so no service re-declares them. The runtime
upgrades every branch to its head at start-up (DB_SCHEMA=migrate, the default).
Developers add a revision with

    uv run python -m kap_shared.migrations revision kap_scheduling "add holds"

which autogenerates the difference between the models and the migrated schema.
Revisions use the helpers below for what every service's tables repeat:
`patient_and_site` (the two scope columns of nearly every table), `id_patient_and_site`
(a row id in front of them), the column groups that are one concept in several tables
(`treatment_plan`, `resolution`, `delivery_attempts`), `create_indexes` (the models'
plain `index=True` columns) and `drop_tables`. A helper gives exactly the columns the
models declare, so the DDL is what the revision would spell out column by column.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import os
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from alembic import command, context, op
from alembic.config import Config
from alembic.script import ScriptDirectory
from sqlalchemy import MetaData, pool
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import create_async_engine
from sqlmodel.sql.sqltypes import AutoString, UTCDateTime

# The platform tables must be registered before their metadata is read.
from .messaging import idempotency, inbox, outbox, timers  # noqa: F401


def migrations_dir(package: str) -> Path:
    module = importlib.import_module(package)
    return Path(module.__file__ or "").parent / "migrations"


PLATFORM_VERSIONS = Path(__file__).with_name("platform_migrations")


def patient_and_site() -> tuple[sa.Column[str], sa.Column[str]]:
    """`patient_id` and `site_id`, required, 64 characters: the envelope's scope, which
    the services' tables keep to read by patient and authorize by site."""
    return (
        sa.Column("patient_id", AutoString(length=64), nullable=False),
        sa.Column("site_id", AutoString(length=64), nullable=False),
    )


def id_patient_and_site(
    column: str, *, length: int
) -> tuple[sa.Column[str], sa.Column[str], sa.Column[str]]:
    """The row's own id (required, `length` characters), then `patient_and_site`: how most
    of the services' tables begin."""
    return (sa.Column(column, AutoString(length=length), nullable=False), *patient_and_site())


def treatment_plan() -> tuple[sa.Column[str], ...]:
    """A plan as TreatmentPlanCreated states it, the start of every service's `plans`
    projection: its id and scope, route, protocol and prescriber."""
    return (
        *id_patient_and_site("plan_id", length=64),
        sa.Column("route", AutoString(length=32), nullable=False),
        sa.Column("protocol", AutoString(length=64), nullable=False),
        sa.Column("prescriber_id", AutoString(length=64), nullable=False),
    )


def resolution() -> tuple[sa.Column[Any], ...]:
    """When, by whom, how (a coded reason) and with what note a raised flag (an alert, a
    safety concern) was resolved; empty while it is open."""
    return (
        sa.Column("resolved_at", UTCDateTime(), nullable=True),
        sa.Column("resolved_by", AutoString(length=64), nullable=True),
        sa.Column("resolution", AutoString(length=64), nullable=True),
        sa.Column("resolution_note", AutoString(), nullable=True),
    )


def delivery_attempts() -> tuple[sa.Column[Any], ...]:
    """How often the platform tried to deliver a row (an outbox message, a timer) and
    the last failure, for its retries."""
    return (
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("last_error", AutoString(), nullable=True),
    )


def create_indexes(table: str, *columns: str) -> None:
    """The plain index of each column, named as SQLModel's `index=True` names it
    (`ix_<table>_<column>`); batch mode, so SQLite and PostgreSQL take the same path."""
    with op.batch_alter_table(table, schema=None) as batch_op:
        for column in columns:
            batch_op.create_index(batch_op.f(f"ix_{table}_{column}"), [column], unique=False)


def drop_tables(*tables: str) -> None:
    """A downgrade's table drops, newest table first. Each table's indexes (and
    triggers) go with it on SQLite and PostgreSQL alike, so none is dropped one by one."""
    for table in tables:
        op.drop_table(table)


def alembic_config(url: str, script_location: Path) -> Config:
    config = Config()
    config.set_main_option("script_location", str(script_location))
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    config.set_main_option("path_separator", "os")
    config.set_main_option(
        "version_locations",
        os.pathsep.join([str(script_location / "versions"), str(PLATFORM_VERSIONS)]),
    )
    return config


def upgrade(url: str, script_location: Path, revision: str = "heads") -> None:
    """Bring the database at `url` to the newest revisions, or to `revision` (a test of a
    revision's data step starts before it); blocking, run in a thread."""
    command.upgrade(alembic_config(url, script_location), revision)


def run_env(metadatas: Sequence[MetaData]) -> None:
    """The body of every service's migrations/env.py."""
    url = context.config.get_main_option("sqlalchemy.url") or ""

    def configure(connection: Connection | None = None) -> None:
        context.configure(
            connection=connection,
            url=None if connection else url,
            target_metadata=list(metadatas),
            render_as_batch=True,  # SQLite can only ALTER through table copies
            compare_type=True,
            literal_binds=connection is None,
        )

    if context.is_offline_mode():
        configure()
        with context.begin_transaction():
            context.run_migrations()
        return

    def migrate(connection: Connection) -> None:
        configure(connection)
        with context.begin_transaction():
            context.run_migrations()

    async def online() -> None:
        engine = create_async_engine(url, poolclass=pool.NullPool)
        async with engine.connect() as connection:
            await connection.run_sync(migrate)
            await connection.commit()
        await engine.dispose()

    asyncio.run(online())


def revision(package: str, message: str) -> None:
    """Autogenerate a revision of `package`'s own branch (labelled with the package
    name) from the models against a scratch SQLite database."""
    location = migrations_dir(package)
    with tempfile.TemporaryDirectory() as scratch:
        url = f"sqlite+aiosqlite:///{scratch}/scratch.db"
        config = alembic_config(url, location)
        command.upgrade(config, "heads")
        scripts = ScriptDirectory.from_config(config)
        has_branch = any(
            package in (rev.branch_labels or ()) for rev in scripts.walk_revisions("base", "heads")
        )
        command.revision(
            config,
            message=message,
            autogenerate=True,
            head=f"{package}@head" if has_branch else "base",
            branch_label=None if has_branch else package,
            version_path=str(location / "versions"),
        )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Alembic for KAP services")
    sub = parser.add_subparsers(dest="command", required=True)
    rev = sub.add_parser("revision", help="autogenerate a revision for a service")
    rev.add_argument("package", help="e.g. kap_scheduling")
    rev.add_argument("message")
    up = sub.add_parser("upgrade", help="upgrade a database to head")
    up.add_argument("package")
    up.add_argument("url", help="async SQLAlchemy URL")
    args = parser.parse_args(argv)
    if args.command == "revision":
        revision(args.package, args.message)
    else:
        upgrade(args.url, migrations_dir(args.package))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
