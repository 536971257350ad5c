"""Settings from the environment (CONTRACT section 5)."""

from __future__ import annotations

import inspect
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from sqlalchemy import inspect as sa_inspect
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine

from kap_shared.db import create_engine, create_tables
from kap_shared.settings import ServiceSettings

ENV = (
    "DATABASE_URL",
    "VAR_DIR",
    "SERVICE_NAME",
    "KAFKA_BOOTSTRAP_SERVERS",
    "KAFKA_SECURITY_PROTOCOL",
    "KAP_JWT_SECRET",
    "KAP_JWT_JWKS_URL",
    "LOG_LEVEL",
    "LOG_FORMAT",
)


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ENV:
        monkeypatch.delenv(name, raising=False)


def settings(**values: Any) -> ServiceSettings:
    """Settings from the given values and the environment only (no .env file)."""
    return ServiceSettings(_env_file=None, **values)


def test_default_database_is_sqlite_under_var_dir_with_aiosqlite(tmp_path: Path) -> None:
    url = settings(service_name="intake", var_dir=tmp_path).resolved_database_url
    assert url == f"sqlite+aiosqlite:///{tmp_path}/intake.db"


def test_default_var_dir_is_relative_var() -> None:
    url = settings(service_name="monitoring").resolved_database_url
    assert url == "sqlite+aiosqlite:///var/monitoring.db"


async def test_default_database_url_is_usable(tmp_path: Path) -> None:
    url = settings(service_name="scheduling", var_dir=tmp_path / "nested").resolved_database_url
    engine = create_engine(url)
    try:
        await create_tables(engine, [])
        async with engine.connect() as conn:
            tables = await conn.run_sync(lambda c: set(sa_inspect(c).get_table_names()))
    finally:
        await engine.dispose()
    assert (tmp_path / "nested" / "scheduling.db").is_file()
    assert {"outbox_messages", "inbox_messages"} <= tables


@pytest.mark.parametrize("scheme", ["postgresql://", "postgres://", "postgresql+psycopg2://"])
def test_postgres_urls_use_the_asyncpg_driver(scheme: str) -> None:
    url = settings(
        database_url=f"{scheme}kap:s3cr%40t@db.internal:6432/intake"
    ).resolved_database_url
    assert url == "postgresql+asyncpg://kap:s3cr%40t@db.internal:6432/intake"
    parsed = make_url(url)
    assert (parsed.host, parsed.port, parsed.database, parsed.password) == (
        "db.internal",
        6432,
        "intake",
        "s3cr@t",
    )


def test_database_url_comes_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATABASE_URL", "postgres://kap@pg:5432/notifications")
    assert settings().resolved_database_url == "postgresql+asyncpg://kap@pg:5432/notifications"


@pytest.mark.parametrize(
    "url", ["postgresql+asyncpg://kap@pg/intake", "sqlite+aiosqlite:////srv/kap/intake.db"]
)
def test_async_urls_are_left_alone(url: str) -> None:
    assert settings(database_url=url).resolved_database_url == url


def test_postgres_url_with_sslmode_gives_arguments_asyncpg_accepts() -> None:
    # The usual managed-PostgreSQL URL form. No network: inspect the connect arguments.
    url = settings(
        database_url="postgresql://kap:pw@db.example.com:5432/intake?sslmode=require"
    ).resolved_database_url
    engine = create_async_engine(url)
    _, kwargs = engine.dialect.create_connect_args(make_url(url))
    inspect.signature(asyncpg.connect).bind(**kwargs)  # TypeError on unknown keywords


def test_contract_environment_variables_are_read(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", "kafka-1:9092,kafka-2:9092")
    monkeypatch.setenv("KAP_JWT_JWKS_URL", "https://idp.example.com/jwks.json")
    monkeypatch.setenv("LOG_FORMAT", "console")
    monkeypatch.setenv("LOG_LEVEL", "DEBUG")
    s = settings()
    assert s.kafka.bootstrap_servers == "kafka-1:9092,kafka-2:9092"
    assert s.kap_jwt_jwks_url == "https://idp.example.com/jwks.json"
    assert (s.log_format, s.log_level) == ("console", "DEBUG")


def test_kafka_defaults_to_localhost() -> None:
    assert settings().kafka.bootstrap_servers == "localhost:9092"
    assert settings().kafka.security_protocol == "PLAINTEXT"
