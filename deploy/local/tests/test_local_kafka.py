"""The local Kafka broker (Maven jars) really works with the clients the services use."""

from __future__ import annotations

import asyncio
import shutil
import socket
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError

from kap_local import kafka as kk
from kap_local.processes import free_port
from kap_local.pytest_plugin import broker_source

pytestmark = pytest.mark.kafka


def _name(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


async def _consume(
    bootstrap: str, topic: str, group: str, want: int, budget_s: float = 20
) -> tuple[AIOKafkaConsumer, list[Any]]:
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        group_id=group,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
    )
    await consumer.start()
    got: list[Any] = []
    async with asyncio.timeout(budget_s):
        while len(got) < want:
            batch = await consumer.getmany(timeout_ms=500)
            for records in batch.values():
                got.extend(records)
    return consumer, got


# --------------------------------------------------------------------------- via the fixture


async def test_idempotent_producer_and_group_consumer_manual_commit(
    kafka_bootstrap: str,
) -> None:
    topic, group = _name("idem"), _name("grp")
    producer = AIOKafkaProducer(
        bootstrap_servers=kafka_bootstrap, enable_idempotence=True, acks="all"
    )
    await producer.start()  # InitProducerId: refused by brokers without idempotence support
    try:
        for i in range(30):
            await producer.send_and_wait(topic, f"v{i}".encode(), key=f"k{i}".encode())
    finally:
        await producer.stop()

    consumer, got = await _consume(kafka_bootstrap, topic, group, want=30)
    try:
        assert sorted(r.value for r in got) == sorted(f"v{i}".encode() for i in range(30))
        await consumer.commit()
        parts = consumer.assignment()
        committed = {tp: await consumer.committed(tp) for tp in parts}
        assert sum(c or 0 for c in committed.values()) == 30
    finally:
        await consumer.stop()

    # The group resumes after its committed offsets: nothing is redelivered.
    again = AIOKafkaConsumer(
        topic, bootstrap_servers=kafka_bootstrap, group_id=group, enable_auto_commit=False
    )
    await again.start()
    try:
        batch = await again.getmany(timeout_ms=1500)
        assert sum(len(v) for v in batch.values()) == 0
    finally:
        await again.stop()


async def test_admin_create_topics(kafka_bootstrap: str) -> None:
    topic = _name("admin")
    admin = AIOKafkaAdminClient(bootstrap_servers=kafka_bootstrap)
    await admin.start()
    try:
        new = [NewTopic(topic, num_partitions=4, replication_factor=1)]
        # aiokafka returns per-topic error codes instead of raising.
        resp = await admin.create_topics(new)
        assert [(t[0], t[1]) for t in resp.topic_errors] == [(topic, 0)]
        (desc,) = await admin.describe_topics([topic])
        assert desc["error_code"] == 0
        assert len(desc["partitions"]) == 4
        assert topic in await admin.list_topics()
        again = await admin.create_topics(new)
        assert again.topic_errors[0][1] == TopicAlreadyExistsError.errno
    finally:
        await admin.close()


async def test_auto_created_topic_uses_num_partitions(
    kafka_bootstrap: str, request: pytest.FixtureRequest
) -> None:
    topic = _name("auto")
    producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap)
    await producer.start()
    try:
        await producer.send_and_wait(topic, b"x")  # auto.create.topics.enable=true
        parts = await producer.partitions_for(topic)
    finally:
        await producer.stop()
    assert parts
    # LocalKafka runs with num.partitions=3; other sources keep their own default.
    if broker_source(request.config) == "local":
        assert len(parts) == 3


# --------------------------------------------------------------------------- jars step


def test_ensure_jars_is_idempotent(monkeypatch: pytest.MonkeyPatch) -> None:
    libs = kk.ensure_jars()  # fetched already (fixture or earlier run), or fetched now
    marker = libs / kk.MARKER_NAME
    before = marker.stat().st_mtime_ns

    def no_maven(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError(f"ensure_jars re-ran a command: {args}")

    monkeypatch.setattr(subprocess, "run", no_maven)
    assert kk.ensure_jars() == libs
    assert marker.stat().st_mtime_ns == before


def test_ensure_jars_refetches_missing_or_incomplete(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A private copy of the fetch project: the real libs/ may be in use by a broker.
    home = tmp_path / "kafka"
    home.mkdir()
    shutil.copy(kk.kafka_home() / "pom.xml", home / "pom.xml")
    kk.ensure_jars()  # warm ~/.m2 so the copies below are local
    monkeypatch.setenv("KAP_KAFKA_HOME", str(home))

    calls: list[list[str]] = []
    real_run = subprocess.run

    def counting_run(cmd: list[str], **kwargs: Any) -> Any:
        calls.append(cmd)
        return real_run(cmd, **kwargs)

    monkeypatch.setattr(subprocess, "run", counting_run)
    libs = kk.ensure_jars()
    mvn_calls = [c for c in calls if "dependency:copy-dependencies" in c]
    assert len(mvn_calls) == 1
    marker = (libs / kk.MARKER_NAME).read_text()
    assert kk.kafka_version() in marker
    assert (libs / f"kafka_2.13-{kk.kafka_version()}.jar").is_file()

    kk.ensure_jars()  # complete: no second Maven run
    assert len([c for c in calls if "dependency:copy-dependencies" in c]) == 1

    next(libs.glob("kafka-raft-*.jar")).unlink()  # incomplete: fetched again
    kk.ensure_jars()
    assert len([c for c in calls if "dependency:copy-dependencies" in c]) == 2
    assert any(libs.glob("kafka-raft-*.jar"))


# --------------------------------------------------------------------------- LocalKafka directly


async def _produce_one(bootstrap: str, topic: str, value: bytes) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, enable_idempotence=True)
    await producer.start()
    try:
        await producer.send_and_wait(topic, value)
    finally:
        await producer.stop()


async def test_restart_reuses_formatted_storage(tmp_path: Path) -> None:
    work = tmp_path / "persistent"
    topic = _name("keep")
    with kk.LocalKafka(work_dir=work, partitions=1) as first:
        await _produce_one(first.bootstrap, topic, b"survives restarts")
        cluster_id = first.cluster_id
        assert (work / kk.PID_FILE).is_file()
    assert not (work / kk.PID_FILE).exists()
    meta = (work / "data" / "meta.properties").read_text()

    with kk.LocalKafka(work_dir=work, partitions=1) as second:  # new free ports, same storage
        assert second.cluster_id == cluster_id
        consumer, got = await _consume(second.bootstrap, topic, _name("g"), want=1)
        await consumer.stop()
        assert [r.value for r in got] == [b"survives restarts"]
    assert (work / "data" / "meta.properties").read_text() == meta


def test_death_during_start_raises_with_log_tail(tmp_path: Path) -> None:
    # Formatting succeeds; the broker JVM then dies binding its (occupied) listener port.
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        port = squatter.getsockname()[1]
        broker = kk.LocalKafka(work_dir=tmp_path / "bad", port=port, controller_port=free_port())
        with pytest.raises(RuntimeError, match=r"exited with code \d+ during start") as info:
            broker.start(timeout=60)
    assert "Address already in use" in str(info.value)  # the log tail names the culprit
    assert broker.pid is None
    assert not (tmp_path / "bad" / kk.PID_FILE).exists()


def _cli_start(work: Path, port: int) -> subprocess.Popen[str]:
    """`python -m kap_local.kafka start` in the foreground; returns once it printed 'ready:'."""
    proc = subprocess.Popen(
        [*CLI, "start", "--port", str(port), "--work-dir", str(work)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    assert proc.stdout is not None
    lines: list[str] = []
    while not lines or "ready:" not in lines[-1]:
        line = proc.stdout.readline()  # pytest-timeout bounds this
        if not line:
            proc.wait(30)
            pytest.fail(f"CLI start exited ({proc.returncode}):\n{''.join(lines)}")
        lines.append(line)
    assert f"KAFKA_BOOTSTRAP_SERVERS=127.0.0.1:{port}" in lines[-1]
    return proc


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*CLI, *args], capture_output=True, text=True, check=False, timeout=60)


CLI = [sys.executable, "-m", "kap_local.kafka"]


def test_cli_start_status_stop(tmp_path: Path) -> None:
    work = tmp_path / "cli"
    port = free_port()

    # 1) foreground start, status, then SIGTERM to the CLI (what a supervisor does).
    proc = _cli_start(work, port)
    try:
        status = _cli("status", "--work-dir", str(work))
        assert status.returncode == 0, status.stdout
        assert f"127.0.0.1:{port}" in status.stdout
        broker_pid = kk.read_pid(work)
        assert broker_pid is not None
        proc.terminate()
        assert proc.wait(60) == 0
        assert kk.read_pid(work) is None
        assert not kk._is_kafka_pid(broker_pid)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()

    # 2) same work dir again (formatted storage reused), ended by `stop` from outside.
    proc = _cli_start(work, port)
    try:
        stop = _cli("stop", "--work-dir", str(work))
        assert stop.returncode == 0
        assert "stopped" in stop.stdout
        assert proc.wait(60) == 0  # the CLI sees a clean broker exit
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert _cli("status", "--work-dir", str(work)).returncode == 1
