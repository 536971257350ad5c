"""pytest plugin (entry point ``kap_local``): a real Kafka broker for ``@pytest.mark.kafka`` tests,
and a new database on each backend for the database tests.

``kafka_bootstrap`` (session scope) resolves a broker in this order:

1. env ``KAFKA_BOOTSTRAP_SERVERS`` (CI service, ``make kafka``, compose, ...);
2. testcontainers' ``KafkaContainer`` (cp-kafka 7.6.0, KRaft), only when a Docker
   engine answers a ping;
3. :class:`kap_local.kafka.LocalKafka`: Kafka from Maven Central jars (Java 17 + Maven).

``KAP_KAFKA_PROVIDER=docker|local`` forces one of 2/3 (default ``auto``).  When no broker
can be had the fixture *fails* the tests: a Kafka test never silently skips.

``database_url`` (parametrized ``sqlite`` / ``postgres``) is a new, empty database as an
async SQLAlchemy URL: a SQLite file, or a database of the test's own on the session's
``postgres`` server (:class:`kap_local.postgres.LocalPostgres`, started on first use).

Imports of aiokafka/docker/testcontainers/kap_local.postgres stay inside functions: this
plugin is loaded by every pytest run in the workspace and must cost nothing when Kafka (or
PostgreSQL) is not used.
"""

from __future__ import annotations

import contextlib
import os
import time
import uuid
from collections.abc import Callable, Generator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from kap_local.postgres import LocalPostgres

ENV_BOOTSTRAP = "KAFKA_BOOTSTRAP_SERVERS"
ENV_PROVIDER = "KAP_KAFKA_PROVIDER"
CP_KAFKA_IMAGE = "confluentinc/cp-kafka:7.6.0"

HOW_TO_GET_A_BROKER = (
    "No Kafka broker for tests marked `kafka`. Any one of these works:\n"
    f"  * point at a running broker: export {ENV_BOOTSTRAP}=host:port\n"
    "  * run `make kafka` (Kafka from Maven jars on 127.0.0.1:9092) and export "
    f"{ENV_BOOTSTRAP}=127.0.0.1:9092\n"
    "  * install Java 17+ and Maven 3 (Debian: apt-get install openjdk-17-jre-headless maven);"
    " the tests then start Kafka from Maven Central jars by themselves\n"
    "  * run a Docker engine (testcontainers starts cp-kafka)"
)


@dataclass
class BrokerInfo:
    """Which broker the session got, for the report."""

    source: str
    bootstrap: str
    detail: str = ""


_info_key = pytest.StashKey[BrokerInfo]()


def broker_source(config: pytest.Config) -> str | None:
    """ "KAFKA_BOOTSTRAP_SERVERS", "testcontainers" or "local" once kafka_bootstrap resolved."""
    info = config.stash.get(_info_key, None)
    return info.source if info is not None else None


def _docker_available() -> bool:
    try:
        import docker

        client = docker.from_env(timeout=3)
        try:
            return bool(client.ping())
        finally:
            client.close()
    except Exception:  # no SDK, no socket, no permission: all mean "no Docker"
        return False


def _announce(config: pytest.Config, info: BrokerInfo) -> None:
    config.stash[_info_key] = info
    reporter = config.pluginmanager.get_plugin("terminalreporter")
    capture = config.pluginmanager.get_plugin("capturemanager")
    if reporter is None:
        return
    # Fixture setup runs with output captured; suspend it so the line reaches the terminal.
    ctx = capture.global_and_fixture_disabled() if capture else contextlib.nullcontext()
    with ctx:
        reporter.ensure_newline()
        reporter.write_line(f"kafka broker: {info.source} at {info.bootstrap} {info.detail}")


def pytest_report_header(config: pytest.Config) -> str:
    # The broker is resolved lazily (only if a test needs it); say what would be used.
    if os.environ.get(ENV_BOOTSTRAP):
        return f"kafka broker: {ENV_BOOTSTRAP}={os.environ[ENV_BOOTSTRAP]}"
    provider = os.environ.get(ENV_PROVIDER, "auto")
    return (
        f"kafka broker: on demand ({ENV_PROVIDER}={provider}; "
        "testcontainers if Docker answers, else Kafka from Maven jars)"
    )


def pytest_terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    info = config.stash.get(_info_key, None)
    if info is not None:
        terminalreporter.write_line(
            f"kafka broker used: {info.source} at {info.bootstrap} {info.detail}".rstrip()
        )


def _from_docker() -> Generator[tuple[str, str], None, None]:
    from testcontainers.community.kafka import KafkaContainer

    container = KafkaContainer(CP_KAFKA_IMAGE).with_kraft()
    container.start()
    try:
        yield str(container.get_bootstrap_server()), f"({CP_KAFKA_IMAGE})"
    finally:
        container.stop()


def _from_jars(
    tmp_path_factory: pytest.TempPathFactory,
) -> Generator[tuple[str, str], None, None]:
    from kap_local.kafka import LocalKafka, ensure_jars, kafka_version

    started = time.monotonic()
    ensure_jars()
    broker = LocalKafka(work_dir=tmp_path_factory.mktemp("kafka"))
    try:
        bootstrap = broker.start()
        yield (
            bootstrap,
            (
                f"(Kafka {kafka_version()} from Maven jars, pid {broker.pid}, "
                f"ready in {time.monotonic() - started:.1f}s, logs in {broker.work_dir / 'logs'})"
            ),
        )
    finally:
        broker.stop()


@pytest.fixture(scope="session")
def kafka_bootstrap(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """Bootstrap servers ("host:port") of a real Kafka broker for the whole session."""
    config = request.config
    env = os.environ.get(ENV_BOOTSTRAP)
    if env:
        _announce(config, BrokerInfo(ENV_BOOTSTRAP, env))
        yield env
        return

    provider = os.environ.get(ENV_PROVIDER, "auto").lower()
    if provider not in {"auto", "docker", "local"}:
        pytest.fail(f"{ENV_PROVIDER}={provider!r}: expected auto, docker or local", pytrace=False)
    problems: list[str] = []
    # (source, what a failure is reported as, the broker's generator); tried in order.
    sources: list[tuple[str, str, Callable[[], Generator[tuple[str, str], None, None]]]] = []
    if provider in {"auto", "docker"}:
        if _docker_available():
            sources.append(("testcontainers", "testcontainers", _from_docker))
        else:
            problems.append("testcontainers: no Docker engine answered a ping")
    if provider in {"auto", "local"}:
        sources.append(("local", "Kafka from Maven jars", lambda: _from_jars(tmp_path_factory)))

    for source, label, start in sources:
        broker = start()
        try:
            bootstrap, detail = next(broker)
        except Exception as exc:  # e.g. image pull refused: fall through to the next
            problems.append(f"{label}: {type(exc).__name__}: {exc}")
            continue
        _announce(config, BrokerInfo(source, bootstrap, detail))
        try:
            yield bootstrap
        finally:
            broker.close()  # stops the container or the broker
        return

    pytest.fail(
        HOW_TO_GET_A_BROKER + "\nTried:\n" + "\n".join(f"  - {p}" for p in problems),
        pytrace=False,
    )


@pytest.fixture(scope="session")
def postgres() -> Iterator[LocalPostgres]:
    """A PostgreSQL server for the whole session (Debian's binaries, a temporary cluster)."""
    from kap_local.postgres import LocalPostgres

    with LocalPostgres() as server:
        yield server


@pytest.fixture(params=["sqlite", "postgres"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A new, empty database on each backend, as an async SQLAlchemy URL."""
    if request.param == "sqlite":
        return f"sqlite+aiosqlite:///{tmp_path / 'test.db'}"
    server: LocalPostgres = request.getfixturevalue("postgres")
    url = server.create_database(f"test_{uuid.uuid4().hex}")
    from kap_shared.settings import async_database_url

    return async_database_url(url)
