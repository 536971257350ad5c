"""Fixtures for the end-to-end suite: a real Kafka broker (from the kap_local
pytest plugin: KAFKA_BOOTSTRAP_SERVERS, testcontainers, or Kafka from Maven
jars; never skipped) and the four services as separate OS processes."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from kap_local.platform import Platform

sys.path.insert(0, str(Path(__file__).parent))

SECRET = "e2e-secret-that-is-long-enough-for-hs256!"  # test-only key


@pytest.fixture(scope="session")
def platform(kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Platform]:
    work = tmp_path_factory.mktemp("platform")
    running = Platform(
        bootstrap=kafka_bootstrap,
        work_dir=work,
        jwt_secret=SECRET,
        extra_env={"OUTBOX_POLL_SECONDS": "0.2", "CONSUMER_RETRY_BACKOFF_SECONDS": "0.05"},
    )
    try:
        running.start()
        yield running
    finally:
        running.stop()
