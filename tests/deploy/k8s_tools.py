"""The real kustomize and kubeconform for tests/deploy (installed by `make k8s-tools`
and `.ci/run` with `go install`; never skipped: a missing tool fails with how to
install it).

kubeconform reads JSON schemas from disk only (no network here): they are generated
from the schemas the kubernetes-validate package ships (one `v<version>-local-strict`
folder per Kubernetes minor, whose `$ref`s point at a shared `_definitions.json`) by
inlining the definitions each kind reaches, in kubeconform's `-standalone-strict`
layout. Custom resources (PrometheusRule, PodMonitor) get the schemas the tests define.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from collections.abc import Mapping
from functools import cache
from pathlib import Path
from typing import Any

import kubernetes_validate  # type: ignore[import-untyped]  # ships no py.typed
import pytest
import yaml

Manifest = dict[str, Any]

SCHEMAS = Path(kubernetes_validate.__file__).parent / "kubernetes-json-schema"
DEFINITIONS_REF = re.compile(r"^/api/_definitions\.json(#.*)$")


class KustomizeError(RuntimeError):
    pass


@cache
def tool(name: str) -> Path:
    """The installed binary: on PATH, in $GOBIN, or in $(go env GOPATH)/bin."""
    candidates = [shutil.which(name)]
    if os.environ.get("GOBIN"):
        candidates.append(str(Path(os.environ["GOBIN"]) / name))
    go = shutil.which("go") or "/usr/local/go/bin/go"
    if Path(go).exists():
        gopath = subprocess.run(
            [go, "env", "GOPATH"], capture_output=True, text=True, check=False
        ).stdout.strip()
        if gopath:
            candidates.append(str(Path(gopath) / "bin" / name))
    candidates.append(str(Path.home() / "go" / "bin" / name))
    for candidate in candidates:
        if candidate and Path(candidate).is_file() and os.access(candidate, os.X_OK):
            return Path(candidate)
    pytest.fail(
        f"{name} is not installed: run `make k8s-tools` (go install of the versions the "
        "Makefile pins, into $(go env GOPATH)/bin; needs Go, e.g. Debian's golang-go)"
    )


def load_documents(path: Path) -> list[Manifest]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc]


def render(directory: Path) -> list[Manifest]:
    """`kustomize build DIRECTORY`, parsed."""
    done = subprocess.run(
        [str(tool("kustomize")), "build", str(directory)],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise KustomizeError(done.stderr.strip())
    return [doc for doc in yaml.safe_load_all(done.stdout) if doc]


# -- kubeconform ----------------------------------------------------------------------------


def schema_file_name(manifest: Manifest) -> str:
    """kubeconform's `{{ .ResourceKind }}{{ .KindSuffix }}.json` (deployment-apps-v1.json)."""
    group, _, version = str(manifest.get("apiVersion", "")).rpartition("/")
    suffix = f"-{group.split('.')[0]}-{version}" if group else f"-{version}"
    return f"{str(manifest.get('kind', '')).lower()}{suffix}.json"


def _standalone(schema: dict[str, Any], definitions: dict[str, Any]) -> dict[str, Any]:
    """The kind's schema with every definition it reaches inlined under `$defs`."""
    text = json.dumps(schema)
    reached: dict[str, Any] = {}
    pending = re.findall(r'"/api/_definitions\.json#/\$defs/([^"]+)"', text)
    while pending:
        name = pending.pop()
        if name in reached:
            continue
        reached[name] = definitions[name]
        pending += re.findall(r'"#/\$defs/([^"]+)"', json.dumps(definitions[name]))

    def rewrite(node: Any) -> Any:
        if isinstance(node, dict):
            out = {key: rewrite(value) for key, value in node.items()}
            ref = out.get("$ref")
            if isinstance(ref, str) and (match := DEFINITIONS_REF.match(ref)):
                out["$ref"] = match.group(1)
            return out
        if isinstance(node, list):
            return [rewrite(item) for item in node]
        return node

    standalone: dict[str, Any] = rewrite(schema)
    standalone["$defs"] = reached
    return standalone


def full_version(version: str) -> str:
    """ "1.30" -> "1.30.0" (kubernetes-validate names minors either way)."""
    return version if version.count(".") == 2 else f"{version}.0"


def write_schemas(
    directory: Path,
    version: str,
    manifests: list[Manifest],
    custom: Mapping[str, dict[str, Any]],
) -> None:
    """The schemas `manifests` need, for Kubernetes `version` (e.g. "1.30")."""
    source = SCHEMAS / f"v{full_version(version)}-local-strict"
    target = directory / f"v{full_version(version)}-standalone-strict"
    target.mkdir(parents=True, exist_ok=True)
    definitions = json.loads((source / "_definitions.json").read_text())["$defs"]
    for manifest in manifests:
        name = schema_file_name(manifest)
        if (target / name).exists():
            continue
        if manifest.get("kind") in custom:
            (target / name).write_text(json.dumps(custom[manifest["kind"]]))
        elif (source / name).exists():
            schema = json.loads((source / name).read_text())
            (target / name).write_text(json.dumps(_standalone(schema, definitions)))


def kubeconform(
    manifests: list[Manifest],
    version: str,
    schema_dir: Path,
    custom: Mapping[str, dict[str, Any]],
) -> list[str]:
    """kubeconform -strict over the manifests: one line per invalid or unknown resource."""
    write_schemas(schema_dir, version, manifests, custom)
    layout = "{{ .NormalizedKubernetesVersion }}-standalone{{ .StrictSuffix }}"
    location = f"{schema_dir}/{layout}/{{{{ .ResourceKind }}}}{{{{ .KindSuffix }}}}.json"
    done = subprocess.run(
        [
            str(tool("kubeconform")),
            "-strict",
            "-kubernetes-version",
            full_version(version),
            "-schema-location",
            location,
            "-output",
            "json",
            "-",
        ],
        input=yaml.safe_dump_all(manifests, sort_keys=False),
        capture_output=True,
        text=True,
        check=False,
    )
    report = json.loads(done.stdout or "{}")
    problems = [
        f"{r['kind']}/{r['name']} (k8s {version}): {r['status']}: {r.get('msg', '')}"
        for r in report.get("resources", [])
        if r["status"] != "statusValid"
    ]
    if done.returncode != 0 and not problems:
        problems.append(f"kubeconform exited {done.returncode}: {done.stderr or done.stdout}")
    return problems
