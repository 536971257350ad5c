"""`INSERT ... ON CONFLICT` for the session's database: SQLAlchemy builds it per
dialect (SQLite's and PostgreSQL's share the syntax, not the class)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy import bindparam
from sqlalchemy.dialects.postgresql import Insert as PgInsert
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import Insert as SqliteInsert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.sql import Executable
from sqlmodel.ext.asyncio.session import AsyncSession


def _dialect(session: AsyncSession) -> str:
    return session.bind.dialect.name if session.bind else "sqlite"


def insert_on_conflict(session: AsyncSession, table: Any) -> PgInsert | SqliteInsert:
    """An INSERT into `table` that takes `.on_conflict_do_nothing()` / `_do_update()`."""
    return pg_insert(table) if _dialect(session) == "postgresql" else sqlite_insert(table)


def bound(table: Any, *columns: str) -> dict[str, Any]:
    """Bind parameters named (and typed) after `table`'s `columns`, for `.values()`."""
    return {name: bindparam(name, type_=table.c[name].type) for name in columns}


class PerDialect(dict[str, Executable]):
    """A statement built once per dialect, its values bound at execution
    (`session.exec(statement, params=...)`): building one (coercing every value, walking
    it for its cache key) cost more Python than running it on a hot path such as the
    consumer's inbox claim (bench/alert_handler.py)."""

    def __init__(self, build: Callable[[AsyncSession], Executable]) -> None:
        super().__init__()
        self._build = build

    def of(self, session: AsyncSession) -> Executable:
        dialect = _dialect(session)
        statement = self.get(dialect)
        if statement is None:
            statement = self[dialect] = self._build(session)
        return statement
