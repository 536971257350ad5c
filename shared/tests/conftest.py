"""Fixtures for kap_shared's unit tests: a real SQLite file database per test."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from kap_shared.db import create_engine, create_tables, session_factory

from .dbsupport import TEST_REGISTRY, Sessions


@pytest.fixture
async def engine(tmp_path: Path) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'service.db'}")
    await create_tables(engine, [TEST_REGISTRY.metadata])
    try:
        yield engine
    finally:
        await engine.dispose()


@pytest.fixture
def sessions(engine: AsyncEngine) -> Sessions:
    return session_factory(engine)
