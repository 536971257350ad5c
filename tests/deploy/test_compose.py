"""docker-compose.yml, checked offline (no Docker engine here): valid against the
official Compose Specification schema (vendored in deploy/schemas/), and the
platform's own rules: every service health-gated on Kafka, the topics job and
PostgreSQL, one database per service, a seed job, per-service image tags."""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from kap_local.platform import DEFAULT_PORTS, STATELESS
from kap_shared.events.topics import ALL_TOPICS, MONITORING_VITALS

ROOT = Path(__file__).resolve().parents[2]
SCHEMA = ROOT / "deploy" / "schemas" / "compose-spec.json"
# Every deployable, the console included, at its CONTRACT section 4 port.
PORTS = DEFAULT_PORTS
# Those with a database of their own (the console holds no clinical state).
WITH_DATABASE = [name for name in PORTS if name not in STATELESS]
# docs/deploy.md, "Partitions": keyed by patient_id; vitals carry the volume.
PARTITIONS = {topic: 12 if topic == MONITORING_VITALS else 6 for topic in ALL_TOPICS}
DLQ_PARTITIONS = 3
ALLOWED_ENV = re.compile(
    r"^(KAFKA_[A-Z_]+|DATABASE_URL|KAP_JWT_(SECRET|JWKS_URL|AUDIENCE)|LOG_LEVEL|LOG_FORMAT|"
    r"HTTP_HOST|HTTP_PORT|VAR_DIR|OUTBOX_[A-Z_]+|CONSUMER_[A-Z_]+|"
    # The console (CONTRACT 6.1): the services it calls, its development sign-in, its cookie.
    r"(INTAKE|SCHEDULING|MONITORING|NOTIFICATIONS|RECORDS)_URL|DEV_SIGN_IN|DEV_CLINICIANS|"
    r"SESSION_COOKIE_SECURE)$"
)


def load_compose() -> dict[str, Any]:
    document: dict[str, Any] = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    return document


def validator() -> jsonschema.Draft7Validator:
    schema = json.loads(SCHEMA.read_text())
    jsonschema.Draft7Validator.check_schema(schema)
    return jsonschema.Draft7Validator(schema)


def schema_errors(document: dict[str, Any]) -> list[str]:
    return [
        f"{'/'.join(str(p) for p in error.absolute_path)}: {error.message}"
        for error in validator().iter_errors(document)
    ]


def test_compose_file_is_valid_against_the_compose_specification() -> None:
    errors = schema_errors(load_compose())
    assert not errors, "\n".join(errors)


@pytest.mark.parametrize(
    "breakage",
    [
        ("unknown service key", lambda d: d["services"]["intake"].update(restart_policy="always")),
        (
            "bad depends_on condition",
            lambda d: d["services"]["intake"]["depends_on"]["kafka"].update(
                condition="service_ready"
            ),
        ),
        ("healthcheck without test types", lambda d: d["services"]["kafka"].update(healthcheck=7)),
        ("unknown top-level key", lambda d: d.update(service={})),
    ],
    ids=lambda b: b[0],
)
def test_the_schema_check_catches_a_broken_compose_file(breakage: tuple[str, Any]) -> None:
    document = copy.deepcopy(load_compose())
    breakage[1](document)
    assert schema_errors(document), f"{breakage[0]} passed the schema"


def test_each_service_is_health_gated_on_kafka_topics_and_postgres() -> None:
    services = load_compose()["services"]
    for name in PORTS:
        depends = services[name]["depends_on"]
        assert depends["kafka"]["condition"] == "service_healthy"
        assert depends["kafka-topics"]["condition"] == "service_completed_successfully"
    for name in WITH_DATABASE:
        assert services[name]["depends_on"]["postgres"]["condition"] == "service_healthy"


def test_every_service_healthy_gate_points_at_a_healthcheck() -> None:
    services = load_compose()["services"]
    for name, service in services.items():
        for dependency, gate in (service.get("depends_on") or {}).items():
            if gate.get("condition") == "service_healthy":
                assert "healthcheck" in services[dependency], f"{name} waits on {dependency}"


def test_services_report_ready_through_readyz_on_their_port() -> None:
    services = load_compose()["services"]
    for name, port in PORTS.items():
        test = " ".join(services[name]["healthcheck"]["test"])
        assert f"127.0.0.1:{port}/readyz" in test
        assert services[name]["ports"] == [f"{port}:{port}"]


def test_one_database_per_service_all_created_at_init() -> None:
    services = load_compose()["services"]
    databases = {
        name: services[name]["environment"]["DATABASE_URL"].rsplit("/", 1)[-1]
        for name in WITH_DATABASE
    }
    assert len(set(databases.values())) == len(WITH_DATABASE), databases
    init = (ROOT / "deploy" / "postgres" / "init-databases.sql").read_text()
    created = set(re.findall(r"CREATE DATABASE (\w+);", init))
    assert set(databases.values()) <= created
    mounts = services["postgres"]["volumes"]
    assert any("init-databases.sql:/docker-entrypoint-initdb.d/" in m for m in mounts)


def test_the_seed_job_runs_once_after_scheduling_is_healthy() -> None:
    seed = load_compose()["services"]["seed"]
    assert seed["build"]["target"] == "seed"
    assert (ROOT / seed["build"]["context"] / "Dockerfile").exists()
    assert seed["depends_on"]["scheduling"]["condition"] == "service_healthy"
    assert seed["restart"] == "no"
    assert seed["environment"]["SCHEDULING_URL"] == "http://scheduling:8002"


def test_each_image_has_its_own_version_tag() -> None:
    services = load_compose()["services"]
    for name in PORTS:
        assert services[name]["image"] == f"kap-{name}:${{KAP_{name.upper()}_VERSION:-local}}"
        assert services[name]["build"] == {
            "context": ".",
            "target": "service",
            "args": {"SERVICE": name, "HTTP_PORT": str(PORTS[name])},
        }


def test_services_are_configured_only_with_contract_variables() -> None:
    services = load_compose()["services"]
    for name in PORTS:
        for variable in services[name]["environment"]:
            assert ALLOWED_ENV.match(variable), f"{name}: {variable} is not a CONTRACT variable"


def test_hardened_like_kubernetes() -> None:
    services = load_compose()["services"]
    for name in PORTS:
        assert services[name]["read_only"] is True
        assert "/var/lib/kap" in services[name]["tmpfs"]
        assert services[name]["cap_drop"] == ["ALL"]


def test_topics_job_creates_every_topic_with_its_partitions() -> None:
    script = "\n".join(load_compose()["services"]["kafka-topics"]["command"])
    created = {topic: int(n) for topic, n in re.findall(r"^create (\S+) (\d+)$", script, re.M)}
    assert created == PARTITIONS
    loop = re.search(r"for topic in (.+?); do create \"\$\$topic\.dlq\" (\d+)", script)
    assert loop is not None
    assert set(loop.group(1).split()) == set(ALL_TOPICS)
    assert int(loop.group(2)) == DLQ_PARTITIONS


def test_partition_plan_is_the_documented_one() -> None:
    text = (ROOT / "docs" / "deploy.md").read_text()
    for topic, partitions in PARTITIONS.items():
        assert re.search(rf"\| `{re.escape(topic)}` \|[^|\n]*\| {partitions} \|", text), topic
