"""Each service releases on its own: its version lives in its pyproject.toml and
must agree with what it reports (its app's version: /docs, OpenAPI, AsyncAPI), with its
changelog and with the image tag production runs (docs/release.md)."""

from __future__ import annotations

import importlib
import re
import subprocess
import tomllib
import typing
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
SERVICES = ("intake", "scheduling", "monitoring", "notifications", "records", "console")
SEMVER = re.compile(r"^\d+\.\d+\.\d+$")


def pyproject_version(service: str) -> str:
    project = tomllib.loads((ROOT / "services" / service / "pyproject.toml").read_text())
    version: str = project["project"]["version"]
    return version


def production_tags() -> dict[str, str]:
    overlay = ROOT / "deploy" / "k8s" / "overlays" / "production" / "kustomization.yaml"
    images = yaml.safe_load(overlay.read_text())["images"]
    return {image["name"].removeprefix("kap-"): str(image["newTag"]) for image in images}


def reported_version(service: str) -> str:
    """The version the service's app reports (/docs, OpenAPI), built as at start-up."""
    build = importlib.import_module(f"kap_{service}.bootstrap").build
    hint = typing.get_type_hints(build)["settings"]
    settings_class = next(t for t in typing.get_args(hint) or (hint,) if t is not type(None))
    return str(build(settings_class()).version)


@pytest.mark.parametrize("service", SERVICES)
def test_version_is_semver_and_reported_by_the_service(
    service: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("KAP_JWT_SECRET", "release-test-" + "s" * 32)
    monkeypatch.setenv("VAR_DIR", str(tmp_path))
    version = pyproject_version(service)
    assert SEMVER.match(version)
    reported = reported_version(service)
    assert reported == version, (
        f"kap_{service} reports {reported} but services/{service}/pyproject.toml "
        f"says {version}: release {reported} with `uv version --package kap-{service} "
        f"{reported}`, a CHANGELOG section and the production image tag (docs/release.md)"
    )


@pytest.mark.parametrize("service", SERVICES)
def test_changelog_has_a_section_for_the_current_version(service: str) -> None:
    changelog = (ROOT / "services" / service / "CHANGELOG.md").read_text()
    sections = re.findall(r"^## \[([^\]]+)\]", changelog, re.M)
    released = [s for s in sections if s != "Unreleased"]
    assert released, "no released version in the changelog"
    assert released[0] == pyproject_version(service), (
        f"services/{service}/CHANGELOG.md: newest section is {released[0]}, "
        f"the service is {pyproject_version(service)}"
    )


def test_production_runs_each_services_current_version() -> None:
    tags = production_tags()
    assert set(tags) == set(SERVICES)
    for service in SERVICES:
        assert tags[service] == pyproject_version(service), (
            f"deploy/k8s/overlays/production: kap-{service} newTag {tags[service]} "
            f"!= version {pyproject_version(service)}"
        )


@pytest.mark.parametrize("service", SERVICES)
def test_make_has_a_test_target_per_service(service: str) -> None:
    result = subprocess.run(
        ["make", "-n", f"test-{service}"], cwd=ROOT, capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr
    assert f"--package kap-{service}" in result.stdout
