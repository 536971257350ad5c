"""A small kustomize renderer for the features deploy/k8s/ uses, so the manifests
can be rendered and validated offline without the kustomize binary.

Supported (and nothing else: anything unknown in a kustomization.yaml raises):
  resources         files, and directories holding a kustomization.yaml (recursively)
  namespace         set on every namespaced resource
  labels            `pairs` with includeSelectors: false (metadata.labels only)
  images            name -> newName / newTag / digest, on containers and initContainers
  replicas          name -> count, on Deployments and StatefulSets
  patches           `path:` strategic-merge patches, matched by kind + name: maps merge,
                    `null` deletes, lists of named items (containers, env, volumes,
                    volumeMounts by mountPath) merge by key; other lists are replaced

Usage: python tests/deploy/kustomize_lite.py deploy/k8s/overlays/production
(`kubectl kustomize` renders the same; tests/deploy/test_k8s.py compares them
when kubectl is installed).
"""

from __future__ import annotations

import copy
import sys
from pathlib import Path
from typing import Any

import yaml

Manifest = dict[str, Any]

KNOWN_FIELDS = frozenset(
    {"apiVersion", "kind", "resources", "namespace", "labels", "images", "replicas", "patches"}
)
CLUSTER_SCOPED = frozenset(
    {
        "Namespace",
        "ClusterRole",
        "ClusterRoleBinding",
        "CustomResourceDefinition",
        "PersistentVolume",
        "StorageClass",
        "PriorityClass",
        "ValidatingWebhookConfiguration",
        "MutatingWebhookConfiguration",
    }
)
# Strategic-merge keys of the list fields our patches may touch.
MERGE_KEYS = {
    "containers": "name",
    "initContainers": "name",
    "env": "name",
    "volumes": "name",
    "volumeMounts": "mountPath",
    "ports": "containerPort",
}


class KustomizeError(ValueError):
    pass


def load_documents(path: Path) -> list[Manifest]:
    documents = [d for d in yaml.safe_load_all(path.read_text()) if d]
    for document in documents:
        if not isinstance(document, dict) or "kind" not in document:
            raise KustomizeError(f"{path}: not a Kubernetes object")
    return documents


def render(directory: Path) -> list[Manifest]:
    """The manifests `kustomize build directory` would produce (order aside)."""
    kustomization_file = directory / "kustomization.yaml"
    if not kustomization_file.exists():
        raise KustomizeError(f"{directory}: no kustomization.yaml")
    kustomization: dict[str, Any] = yaml.safe_load(kustomization_file.read_text()) or {}
    unknown = set(kustomization) - KNOWN_FIELDS
    if unknown:
        raise KustomizeError(f"{kustomization_file}: unsupported fields {sorted(unknown)}")

    manifests: list[Manifest] = []
    for entry in kustomization.get("resources", []):
        target = (directory / entry).resolve()
        if target.is_dir():
            manifests.extend(render(target))
        else:
            manifests.extend(load_documents(target))
    _check_unique(manifests, directory)

    for patch_entry in kustomization.get("patches", []):
        if set(patch_entry) != {"path"}:
            raise KustomizeError(f"{directory}: only `path:` patches are supported")
        for patch in load_documents(directory / patch_entry["path"]):
            target = _find(manifests, patch["kind"], patch["metadata"]["name"])
            if target is None:
                raise KustomizeError(
                    f"{patch_entry['path']}: no {patch['kind']} {patch['metadata']['name']}"
                )
            merged = strategic_merge(target, patch)
            target.clear()
            target.update(merged)

    for replica in kustomization.get("replicas", []):
        found = False
        for manifest in manifests:
            if manifest["kind"] in ("Deployment", "StatefulSet") and (
                manifest["metadata"]["name"] == replica["name"]
            ):
                manifest.setdefault("spec", {})["replicas"] = int(replica["count"])
                found = True
        if not found:
            raise KustomizeError(f"replicas: no Deployment {replica['name']}")

    for image in kustomization.get("images", []):
        _set_image(manifests, image)

    for label in kustomization.get("labels", []):
        if label.get("includeSelectors") or label.get("includeTemplates"):
            raise KustomizeError("labels: only includeSelectors: false is supported")
        for manifest in manifests:
            manifest.setdefault("metadata", {}).setdefault("labels", {}).update(label["pairs"])

    namespace = kustomization.get("namespace")
    if namespace:
        for manifest in manifests:
            if manifest["kind"] not in CLUSTER_SCOPED:
                manifest.setdefault("metadata", {})["namespace"] = namespace
    return manifests


def _check_unique(manifests: list[Manifest], directory: Path) -> None:
    seen: set[tuple[str, str]] = set()
    for manifest in manifests:
        key = (manifest["kind"], manifest["metadata"]["name"])
        if key in seen:
            raise KustomizeError(f"{directory}: {key[0]} {key[1]} defined twice")
        seen.add(key)


def _find(manifests: list[Manifest], kind: str, name: str) -> Manifest | None:
    for manifest in manifests:
        if manifest["kind"] == kind and manifest["metadata"]["name"] == name:
            return manifest
    return None


def _split_image(reference: str) -> tuple[str, str]:
    """('registry:5000/kap-intake', ':0.1.0' or '@sha256:...' or '')."""
    if "@" in reference:
        name, digest = reference.split("@", 1)
        return name, "@" + digest
    last = reference.rsplit("/", 1)[-1]
    if ":" in last:
        name, tag = reference.rsplit(":", 1)
        return name, ":" + tag
    return reference, ""


def _set_image(manifests: list[Manifest], image: dict[str, Any]) -> None:
    for manifest in manifests:
        spec = manifest.get("spec", {}).get("template", {}).get("spec", {})
        for key in ("containers", "initContainers"):
            for container in spec.get(key, []):
                name, suffix = _split_image(container["image"])
                if name != image["name"]:
                    continue
                new_name = image.get("newName", name)
                if "digest" in image:
                    suffix = "@" + image["digest"]
                elif "newTag" in image:
                    suffix = ":" + str(image["newTag"])
                container["image"] = new_name + suffix


def strategic_merge(base: Any, patch: Any, field: str | None = None) -> Any:
    if isinstance(base, dict) and isinstance(patch, dict):
        merged = copy.deepcopy(base)
        for key, value in patch.items():
            if value is None:
                merged.pop(key, None)
            elif key in merged:
                merged[key] = strategic_merge(merged[key], value, key)
            else:
                merged[key] = copy.deepcopy(value)
        return merged
    if isinstance(base, list) and isinstance(patch, list) and field in MERGE_KEYS:
        key = MERGE_KEYS[field]
        merged_list = copy.deepcopy(base)
        for item in patch:
            match = next((i for i in merged_list if i.get(key) == item.get(key)), None)
            if match is None:
                merged_list.append(copy.deepcopy(item))
            else:
                merged_list[merged_list.index(match)] = strategic_merge(match, item)
        return merged_list
    return copy.deepcopy(patch)


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        sys.stderr.write("usage: kustomize_lite.py DIRECTORY\n")
        return 2
    manifests = render(Path(argv[0]))
    sys.stdout.write(yaml.safe_dump_all(manifests, sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
