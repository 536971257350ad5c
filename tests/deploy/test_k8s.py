"""deploy/k8s, checked offline with the real tools: the base and the production
overlay render with kustomize, every manifest validates with kubeconform -strict
(unknown fields fail) against the Kubernetes JSON schemas of the oldest and newest
supported minors (from the kubernetes-validate package; see k8s_tools.py), a broken
manifest fails the check, and the manifests follow the platform's rules (probes, resources,
non-root read-only pods, secrets by reference, PDBs, HPAs, NetworkPolicies,
alert rules with runbooks)."""

from __future__ import annotations

import copy
import re
import shutil
import tomllib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import kubernetes_validate  # type: ignore[import-untyped]  # ships no py.typed
import promql_parser
import pytest

from kap_local.platform import DEFAULT_PORTS
from kap_shared.contracts.services import subscriptions
from kap_shared.events.catalog import EVENTS_BY_TOPIC
from kap_shared.events.topics import MONITORING_VITALS

from .k8s_tools import KustomizeError, Manifest, kubeconform, load_documents, render

ROOT = Path(__file__).resolve().parents[2]
K8S = ROOT / "deploy" / "k8s"
BASE = K8S / "base"
PRODUCTION = K8S / "overlays" / "production"
# Every deployable, the console included, at its CONTRACT section 4 port.
PORTS = DEFAULT_PORTS
# Oldest Kubernetes minor we support, and the newest kubernetes-validate knows.
KUBERNETES_VERSIONS = ("1.30", kubernetes_validate.latest_version())
PARTITIONS = {topic: 12 if topic == MONITORING_VITALS else 6 for topic in EVENTS_BY_TOPIC}
UID = 10001
VAR_DIR = "/var/lib/kap"
CONTRACT_ENV = re.compile(
    r"^(KAFKA_(BOOTSTRAP_SERVERS|SECURITY_PROTOCOL|SASL_MECHANISM|SSL_CAFILE|TOPIC_PARTITIONS|"
    r"TOPIC_REPLICATION)|KAP_JWT_(JWKS_URL|AUDIENCE)|LOG_LEVEL|LOG_FORMAT|HTTP_HOST|HTTP_PORT|"
    r"OUTBOX_[A-Z_]+|CONSUMER_[A-Z_]+|"
    # The console (CONTRACT 6.1): the services it calls, its sign-in and session cookie.
    r"(INTAKE|SCHEDULING|MONITORING|NOTIFICATIONS|RECORDS)_URL|DEV_SIGN_IN|OIDC_[A-Z_]+|"
    r"SESSION_COOKIE_SECURE)$"
)
SECRET_ENV = {
    "DATABASE_URL",
    "KAFKA_SASL_USERNAME",
    "KAFKA_SASL_PASSWORD",
    "KAP_JWT_SECRET",
    "OIDC_CLIENT_SECRET",
}


# -- rendering and schema validation ------------------------------------------------------


def closed_object(properties: dict[str, Any], required: list[str]) -> dict[str, Any]:
    """A JSON Schema object that refuses unknown fields, as kubeconform -strict does for the
    Kubernetes kinds."""
    return {
        "type": "object",
        "required": required,
        "additionalProperties": False,
        "properties": properties,
    }


def string_map(required: list[str], **properties: Any) -> dict[str, Any]:
    """Labels or annotations: string values, with these keys present (and these
    `properties` constrained further)."""
    schema: dict[str, Any] = {
        "type": "object",
        "required": required,
        "additionalProperties": {"type": "string"},
    }
    if properties:
        schema["properties"] = properties
    return schema


ALERT_RULE = closed_object(
    {
        "alert": {"type": "string", "pattern": "^Kap[A-Za-z]+$"},
        "expr": {"type": "string"},
        "for": {"type": "string", "pattern": "^[0-9]+[smh]$"},
        "labels": string_map(["severity"], severity={"enum": ["warning", "critical"]}),
        "annotations": string_map(["summary", "runbook_url"]),
    },
    required=["alert", "expr", "labels", "annotations"],
)
RULE_GROUP = closed_object(
    {
        "name": {"type": "string"},
        "interval": {"type": "string"},
        "rules": {"type": "array", "minItems": 1, "items": ALERT_RULE},
    },
    required=["name", "rules"],
)
PROMETHEUS_RULE_SCHEMA = closed_object(
    {
        "apiVersion": {"const": "monitoring.coreos.com/v1"},
        "kind": {"const": "PrometheusRule"},
        "metadata": {"type": "object", "required": ["name"]},
        "spec": closed_object(
            {"groups": {"type": "array", "minItems": 1, "items": RULE_GROUP}},
            required=["groups"],
        ),
    },
    required=["apiVersion", "kind", "metadata", "spec"],
)
METRICS_ENDPOINT = closed_object(
    {
        "port": {"type": "string"},
        "path": {"type": "string"},
        "interval": {"type": "string"},
        "relabelings": {"type": "array"},
    },
    required=["port", "path"],
)
POD_MONITOR_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["apiVersion", "kind", "metadata", "spec"],
    "properties": {
        "apiVersion": {"const": "monitoring.coreos.com/v1"},
        "spec": closed_object(
            {
                "selector": {"type": "object"},
                "podMetricsEndpoints": {"type": "array", "items": METRICS_ENDPOINT},
            },
            required=["selector", "podMetricsEndpoints"],
        ),
    },
}
CUSTOM_SCHEMAS = {"PrometheusRule": PROMETHEUS_RULE_SCHEMA, "PodMonitor": POD_MONITOR_SCHEMA}


@pytest.fixture(scope="module")
def schemas(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """kubeconform's schema folder (filled on demand, shared by the module)."""
    return tmp_path_factory.mktemp("kubeconform-schemas")


def validate_all(manifests: list[Manifest], schemas: Path) -> list[str]:
    """kubeconform's complaints (empty when valid) for every supported version."""
    return [
        problem
        for version in KUBERNETES_VERSIONS
        for problem in kubeconform(manifests, version, schemas, CUSTOM_SCHEMAS)
    ]


def validate_manifest(manifest: Manifest, schemas: Path) -> list[str]:
    return validate_all([manifest], schemas)


@pytest.fixture(scope="module")
def production() -> list[Manifest]:
    return render(PRODUCTION)


@pytest.fixture(scope="module")
def base() -> list[Manifest]:
    return render(BASE)


def by_kind(manifests: list[Manifest], kind: str) -> dict[str, Manifest]:
    return {m["metadata"]["name"]: m for m in manifests if m["kind"] == kind}


@pytest.mark.parametrize("overlay", [BASE, PRODUCTION], ids=["base", "production"])
def test_every_manifest_validates_against_the_kubernetes_schemas(
    overlay: Path, schemas: Path
) -> None:
    manifests = render(overlay)
    assert len(manifests) >= 29
    errors = validate_all(manifests, schemas)
    assert not errors, "\n".join(errors)


def test_operator_tools_validate(schemas: Path) -> None:
    tools = [m for path in sorted((K8S / "tools").glob("*.yaml")) for m in load_documents(path)]
    assert tools
    errors = validate_all(tools, schemas)
    assert not errors, "\n".join(errors)


def deployment_of(manifests: list[Manifest], service: str) -> Manifest:
    return copy.deepcopy(by_kind(manifests, "Deployment")[f"kap-{service}"])


def container(deployment: Manifest) -> dict[str, Any]:
    result: dict[str, Any] = deployment["spec"]["template"]["spec"]["containers"][0]
    return result


Breakage = Callable[[Manifest], None]

BREAKAGES: dict[str, Breakage] = {
    "misspelt field": lambda d: d["spec"].update(replica=3),
    "probe port of the wrong type": lambda d: container(d)["livenessProbe"]["httpGet"].update(
        port=["http"]
    ),
    "missing container image name": lambda d: container(d).pop("name"),
    "resources as a string": lambda d: container(d).update(resources="1 cpu"),
    "bad restart policy type": lambda d: d["spec"]["template"]["spec"].update(
        restartPolicy=["Always"]
    ),
}


@pytest.mark.parametrize("breakage", sorted(BREAKAGES))
def test_a_broken_manifest_fails_validation(
    production: list[Manifest], breakage: str, schemas: Path
) -> None:
    deployment = deployment_of(production, "monitoring")
    assert validate_manifest(deployment, schemas) == []
    BREAKAGES[breakage](deployment)
    assert validate_manifest(deployment, schemas), f"{breakage} passed validation"


def test_a_broken_alert_rule_fails_validation(production: list[Manifest], schemas: Path) -> None:
    rule = copy.deepcopy(by_kind(production, "PrometheusRule")["kap-alerts"])
    assert validate_manifest(rule, schemas) == []
    rule["spec"]["groups"][0]["rules"][0]["labels"]["severity"] = "page-everyone"
    assert validate_manifest(rule, schemas)


def test_an_unknown_kind_fails_validation(schemas: Path) -> None:
    """No schema is no pass: kubeconform is not told to ignore missing schemas."""
    assert validate_manifest(
        {"apiVersion": "kap.example.org/v1", "kind": "Billing", "metadata": {"name": "x"}},
        schemas,
    )


def test_a_broken_overlay_fails_to_render(tmp_path: Path) -> None:
    shutil.copytree(K8S, tmp_path / "k8s")
    overlay = tmp_path / "k8s" / PRODUCTION.relative_to(K8S)
    kustomization = overlay / "kustomization.yaml"
    kustomization.write_text(kustomization.read_text() + "  - path: patches/missing-target.yaml\n")
    (overlay / "patches" / "missing-target.yaml").write_text(
        "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: kap-billing\n"
    )
    with pytest.raises(KustomizeError, match="kap-billing"):
        render(overlay)


# -- the platform's rules -----------------------------------------------------------------


@pytest.mark.parametrize("service", sorted(PORTS))
def test_deployment_probes_resources_and_security(production: list[Manifest], service: str) -> None:
    deployment = by_kind(production, "Deployment")[f"kap-{service}"]
    pod = deployment["spec"]["template"]["spec"]
    main = container(deployment)
    assert main["ports"] == [{"name": "http", "containerPort": PORTS[service], "protocol": "TCP"}]
    assert main["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
    assert main["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "http"}
    assert main["startupProbe"]["httpGet"]["path"] == "/healthz"
    for kind in ("requests", "limits"):
        assert set(main["resources"][kind]) == {"cpu", "memory"}
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] == UID, "the Dockerfile's USER"
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    assert main["securityContext"]["readOnlyRootFilesystem"] is True
    assert main["securityContext"]["allowPrivilegeEscalation"] is False
    assert main["securityContext"]["capabilities"] == {"drop": ["ALL"]}
    mounts = {m["mountPath"]: m["name"] for m in main["volumeMounts"]}
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert "emptyDir" in volumes[mounts[VAR_DIR]], "VAR_DIR is writable scratch"
    assert "emptyDir" in volumes[mounts["/tmp"]]  # noqa: S108 (the pod's scratch mount)
    assert pod["automountServiceAccountToken"] is False
    assert pod["terminationGracePeriodSeconds"] >= 35, "20 s graceful HTTP + 10 s outbox flush"
    assert deployment["spec"]["strategy"]["rollingUpdate"]["maxUnavailable"] == 0


@pytest.mark.parametrize("service", sorted(PORTS))
def test_image_tag_is_the_services_own_version(production: list[Manifest], service: str) -> None:
    version = tomllib.loads((ROOT / "services" / service / "pyproject.toml").read_text())[
        "project"
    ]["version"]
    image = container(by_kind(production, "Deployment")[f"kap-{service}"])["image"]
    assert image == f"registry.example.org/kap/{service}:{version}", (
        "release flow (docs/release.md): bump services/<svc>/pyproject.toml, CHANGELOG.md "
        "and the production image tag together"
    )


def test_secrets_are_referenced_never_stored(production: list[Manifest]) -> None:
    assert not by_kind(production, "Secret"), "no Secret objects in the repository"
    configmaps = by_kind(production, "ConfigMap")
    for deployment in by_kind(production, "Deployment").values():
        main = container(deployment)
        for variable in main["env"]:
            assert "value" not in variable, f"{variable['name']}: literal value"
            assert variable["name"] in SECRET_ENV
            assert "secretKeyRef" in variable["valueFrom"]
        for source in main["envFrom"]:
            assert source["configMapRef"]["name"] in configmaps
    for configmap in configmaps.values():
        for variable in configmap["data"]:
            assert CONTRACT_ENV.match(variable), f"{configmap['metadata']['name']}: {variable}"
            assert variable not in SECRET_ENV


def test_production_talks_to_kafka_over_sasl_ssl(production: list[Manifest]) -> None:
    config = by_kind(production, "ConfigMap")["kap-platform"]["data"]
    assert config["KAFKA_SECURITY_PROTOCOL"] == "SASL_SSL"
    assert config["KAFKA_SASL_MECHANISM"] == "SCRAM-SHA-512"
    assert config["KAFKA_TOPIC_REPLICATION"] == "3"
    assert config["KAP_JWT_JWKS_URL"].startswith("https://")
    for deployment in by_kind(production, "Deployment").values():
        mounts = {m["mountPath"] for m in container(deployment)["volumeMounts"]}
        assert str(Path(config["KAFKA_SSL_CAFILE"]).parent) in mounts


def test_production_namespace_enforces_the_restricted_pod_security_profile(
    production: list[Manifest],
) -> None:
    namespace = by_kind(production, "Namespace")["kap"]
    assert namespace["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"
    for manifest in production:
        if manifest["kind"] != "Namespace":
            assert manifest["metadata"]["namespace"] == "kap"


def test_each_service_has_a_service_pdb_and_network_policy(production: list[Manifest]) -> None:
    services = by_kind(production, "Service")
    budgets = by_kind(production, "PodDisruptionBudget")
    policies = by_kind(production, "NetworkPolicy")
    for service, port in PORTS.items():
        name = f"kap-{service}"
        selector = {"app.kubernetes.io/name": name}
        assert services[name]["spec"]["selector"] == selector
        assert services[name]["spec"]["ports"][0]["port"] == port
        assert budgets[name]["spec"]["selector"]["matchLabels"] == selector
        policy = policies[name]["spec"]
        assert policy["podSelector"]["matchLabels"] == selector
        assert set(policy["policyTypes"]) == {"Ingress", "Egress"}
        assert [p["port"] for rule in policy["ingress"] for p in rule["ports"]] == [port]
        egress = {(p["port"], p["protocol"]) for rule in policy["egress"] for p in rule["ports"]}
        assert {(53, "UDP"), (53, "TCP"), (5432, "TCP"), (9092, "TCP"), (9093, "TCP")} <= egress


def consumed_topics(service: str) -> set[str]:
    topics = {cls.topic for cls in subscriptions(service)}
    if service == "monitoring":
        topics.add(MONITORING_VITALS)  # the safety loop reads gateway vitals (issue 4)
    return topics


def test_only_the_consumers_that_scale_out_have_autoscalers(production: list[Manifest]) -> None:
    autoscalers = by_kind(production, "HorizontalPodAutoscaler")
    assert set(autoscalers) == {"kap-monitoring", "kap-notifications"}
    deployments = by_kind(production, "Deployment")
    for name, autoscaler in autoscalers.items():
        spec = autoscaler["spec"]
        assert spec["scaleTargetRef"]["name"] == name
        assert "replicas" not in deployments[name]["spec"], "the HPA owns the replica count"
        assert 2 <= spec["minReplicas"] <= spec["maxReplicas"]
        service = name.removeprefix("kap-")
        most = max(PARTITIONS[t] for t in consumed_topics(service))
        assert spec["maxReplicas"] <= most, "replicas beyond the partition count sit idle"
    for name in ("kap-intake", "kap-scheduling", "kap-console"):
        assert deployments[name]["spec"]["replicas"] >= 2


# -- alert rules --------------------------------------------------------------------------


def alert_rules(manifests: list[Manifest]) -> list[dict[str, Any]]:
    rule = by_kind(manifests, "PrometheusRule")["kap-alerts"]
    return [r for group in rule["spec"]["groups"] for r in group["rules"]]


def runbook_anchors() -> set[str]:
    text = (ROOT / "docs" / "runbook.md").read_text()
    headings = re.findall(r"^#+\s+(.+?)\s*$", text, re.M)
    return {re.sub(r"[^a-z0-9 -]", "", h.lower()).replace(" ", "-") for h in headings}


def test_alert_expressions_parse_as_promql(production: list[Manifest]) -> None:
    for rule in alert_rules(production):
        try:
            promql_parser.parse(rule["expr"])
        except ValueError as exc:
            pytest.fail(f"{rule['alert']}: {exc}")


def test_a_broken_alert_expression_is_caught() -> None:
    with pytest.raises(ValueError, match="parenthesis"):
        promql_parser.parse("max by (service (kap_outbox_oldest_unsent_age_seconds) > 60")


def test_alerts_cover_the_operational_signals(production: list[Manifest]) -> None:
    expressions = " ".join(rule["expr"] for rule in alert_rules(production))
    for metric in (
        "kap_outbox_oldest_unsent_age_seconds",
        "kap_dead_letters_total",
        "kap_consumer_lag",
        "kap_consumer_offset_commits_total",
        "kap_open_alerts",
        "kap_timers_due",
        "kube_deployment_status_replicas_unavailable",
    ):
        assert metric in expressions, metric


def test_every_alert_links_to_its_runbook_section(production: list[Manifest]) -> None:
    anchors = runbook_anchors()
    for rule in alert_rules(production):
        url = rule["annotations"]["runbook_url"]
        path, _, anchor = url.partition("#")
        assert path == "docs/runbook.md"
        assert anchor in anchors, f"{rule['alert']}: docs/runbook.md has no #{anchor}"
