"""Fixtures for the end-to-end suite: a real Kafka broker (from the kap_local
pytest plugin: KAFKA_BOOTSTRAP_SERVERS, testcontainers, or Kafka from Maven
jars; never skipped) and the four services as separate OS processes.

The platform runs twice: on SQLite (the embedded default) and on PostgreSQL
(one database per service, from Debian's package via kap_local.postgres). So do the
database tests beside it (the kap_local plugin's `database_url`).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

import pytest
from support import SMS_TOKEN, SmsWebhook

from kap_local.platform import SERVICES, Platform, ServiceProcess, postgres_databases
from kap_local.postgres import LocalPostgres

SECRET = "e2e-secret-that-is-long-enough-for-hs256!"  # test-only key
# Per-service rule overrides for test sites (RULES_FILE), e.g. tests/rules/scheduling.json.
RULES = Path(__file__).parent / "rules"


def _service_env() -> dict[str, dict[str, str]]:
    return {
        name: {"RULES_FILE": str(RULES / f"{name}.json")}
        for name in SERVICES
        if (RULES / f"{name}.json").exists()
    }


@pytest.fixture(scope="session", params=["sqlite", "postgres"])
def platform(
    request: pytest.FixtureRequest, kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Platform]:
    work = tmp_path_factory.mktemp(f"platform-{request.param}")
    with ExitStack() as stack:
        database_urls = None
        if request.param == "postgres":
            postgres = stack.enter_context(LocalPostgres())
            database_urls = postgres_databases(postgres, "kap")
        running = Platform(
            bootstrap=kafka_bootstrap,
            work_dir=work,
            jwt_secret=SECRET,
            database_urls=database_urls,
            service_env=_service_env(),
            extra_env={"OUTBOX_POLL_SECONDS": "0.2", "CONSUMER_RETRY_BACKOFF_SECONDS": "0.05"},
        )
        stack.callback(running.stop)
        running.start()
        yield running


@pytest.fixture(scope="module")
def sms_webhook() -> Iterator[SmsWebhook]:
    webhook = SmsWebhook()
    yield webhook
    webhook.server.shutdown()
    webhook.server.server_close()


@pytest.fixture(scope="module")
def notifications(platform: Platform, sms_webhook: SmsWebhook) -> Iterator[ServiceProcess]:
    service = platform["notifications"]
    saved = dict(service.env)
    service.env.update(
        {
            "SMS_WEBHOOK_URL": sms_webhook.url,
            "SMS_WEBHOOK_TOKEN": SMS_TOKEN,
            "TIMER_POLL_SECONDS": "0.2",
            "DELIVERY_POLL_SECONDS": "0.2",
        }
    )
    service.restart()
    yield service
    service.env.clear()
    service.env.update(saved)
    service.restart()
