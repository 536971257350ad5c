"""Fixtures for kap_shared's unit tests: a real SQLite file database per test."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from kap_shared.db import session_factory

from .dbsupport import Sessions, engine_with_tables


@pytest.fixture
async def engine(tmp_path: Path) -> AsyncIterator[AsyncEngine]:
    async with engine_with_tables(f"sqlite+aiosqlite:///{tmp_path / 'service.db'}") as engine:
        yield engine


@pytest.fixture
def sessions(engine: AsyncEngine) -> Sessions:
    return session_factory(engine)
