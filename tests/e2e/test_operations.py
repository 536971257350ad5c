"""Operations: start-up order does not matter, and a graceful stop (SIGTERM)
finishes in-flight work, flushes the outbox and exits within a bounded time."""

from __future__ import annotations

import asyncio
import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from flows import REFERRAL, apis, create_clinic
from support import TopicReader, live_inbox

from kap_local.kafka import LocalKafka, ensure_jars
from kap_local.platform import Platform, ServiceProcess, free_port
from kap_local.postgres import LocalPostgres
from kap_shared.events import topics

pytestmark = [pytest.mark.kafka, pytest.mark.e2e]

SECRET = "operations-test-secret-long-enough-for-hs256"
GRACEFUL_EXIT_SECONDS = 25.0  # below k8s' default terminationGracePeriodSeconds (30)


def _ready(service: ServiceProcess) -> tuple[int, dict[str, bool]]:
    response = httpx.get(f"{service.url}/readyz", timeout=3)
    checks: dict[str, bool] = response.json()["checks"]
    return response.status_code, checks


def _wait(condition: object, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if condition():  # type: ignore[operator]
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    raise AssertionError("condition not met in time")


@pytest.fixture
def late_service(tmp_path: Path) -> Iterator[tuple[ServiceProcess, int, int]]:
    kafka_port, postgres_port, http_port = free_port(), free_port(), free_port()
    env = {
        **os.environ,
        "KAFKA_BOOTSTRAP_SERVERS": f"127.0.0.1:{kafka_port}",
        "DATABASE_URL": f"postgresql://postgres@127.0.0.1:{postgres_port}/kap_scheduling",
        "KAP_JWT_SECRET": SECRET,
        "HTTP_PORT": str(http_port),
        "VAR_DIR": str(tmp_path / "var"),
        "LOG_FORMAT": "json",
    }
    service = ServiceProcess("scheduling", http_port, env, tmp_path / "scheduling.log")
    service.start()
    try:
        yield service, kafka_port, postgres_port
    finally:
        service.stop()


def test_service_started_before_its_database_and_kafka_waits_and_reports_not_ready(
    late_service: tuple[ServiceProcess, int, int], tmp_path: Path
) -> None:
    service, kafka_port, postgres_port = late_service
    _wait(lambda: httpx.get(f"{service.url}/healthz", timeout=2).status_code == 200)
    assert _ready(service) == (503, {"broker": False, "database": False})
    # API calls answer 503 not_ready rather than failing obscurely.
    response = httpx.get(f"{service.url}/patients/p-1/plan", timeout=3)
    assert (response.status_code, response.json()["error"]["code"]) == (503, "not_ready")

    with LocalPostgres(port=postgres_port) as postgres:  # its own temp dir (postgres user)
        postgres.create_database("kap_scheduling")
        _wait(lambda: _ready(service) == (503, {"broker": False, "database": True}))

        ensure_jars()
        with LocalKafka(port=kafka_port):
            _wait(lambda: _ready(service) == (200, {"broker": True, "database": True}))
        assert service.proc is not None
        assert service.proc.poll() is None


async def test_sigterm_flushes_the_outbox_and_exits_in_bounded_time(platform: Platform) -> None:
    clinic = await create_clinic(platform)
    intake = platform["intake"]
    api = apis(platform)["intake"]
    responses = await asyncio.gather(
        *(
            api.request(
                "POST",
                "/patients",
                as_=clinic.as_("nurse"),
                json_body={**REFERRAL, "site_id": clinic.site_id},
            )
            for _ in range(30)
        )
    )
    patient_ids = {r.json()["patient_id"] for r in responses if r.status_code == 201}
    assert len(patient_ids) == 30

    started = time.monotonic()
    assert intake.proc is not None
    intake.proc.send_signal(signal.SIGTERM)
    exit_code = await asyncio.to_thread(intake.proc.wait, GRACEFUL_EXIT_SECONDS)
    elapsed = time.monotonic() - started
    try:
        # uvicorn finishes its shutdown, then re-raises SIGTERM (the conventional exit).
        assert exit_code in (0, -signal.SIGTERM)
        assert "Application shutdown complete" in intake.tail(20)
        assert elapsed < GRACEFUL_EXIT_SECONDS
        # While intake is down, every acknowledged referral is already on the topic.
        async with TopicReader(platform.bootstrap, topics.INTAKE_EVENTS) as reader:
            await reader.wait_for(
                lambda events: (
                    patient_ids
                    <= {e["patient_id"] for e in events if e["event_type"] == "PatientReferred"}
                ),
                timeout=15,
            )
    finally:
        intake.stop()
        intake.start()
        intake.wait_ready()


async def test_sigterm_with_an_open_inbox_stream_exits_promptly(platform: Platform) -> None:
    notifications = platform["notifications"]
    api = apis(platform)["notifications"]
    try:
        async with live_inbox(api, ("th-stream", "therapist", ["site-stream"])):
            assert notifications.proc is not None
            started = time.monotonic()
            notifications.proc.send_signal(signal.SIGTERM)
            await asyncio.to_thread(notifications.proc.wait, GRACEFUL_EXIT_SECONDS)
            # The stream is ended on the signal instead of holding the 20 s graceful timeout.
            assert time.monotonic() - started < 10
            assert "Application shutdown complete" in notifications.tail(20)
    finally:
        notifications.stop()
        notifications.start()
        notifications.wait_ready()
