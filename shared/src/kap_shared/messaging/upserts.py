"""`INSERT ... ON CONFLICT` for the session's database: SQLAlchemy builds it per
dialect (SQLite's and PostgreSQL's share the syntax, not the class)."""

from __future__ import annotations

from sqlalchemy.dialects.postgresql import Insert as PgInsert
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import Insert as SqliteInsert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlmodel.ext.asyncio.session import AsyncSession


def insert_on_conflict(session: AsyncSession, table: type) -> PgInsert | SqliteInsert:
    """An INSERT into `table` that takes `.on_conflict_do_nothing()` / `_do_update()`."""
    dialect = session.bind.dialect.name if session.bind else "sqlite"
    return pg_insert(table) if dialect == "postgresql" else sqlite_insert(table)
