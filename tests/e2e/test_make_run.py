"""The front door: `make run` (what the Makefile's `run` target calls,
`python -m kap_local.run`) on free ports and its own work dir, then the README's
"Driving the first flow by hand" block, taken from README.md itself, run with bash
and curl against the services the banner lists, then Ctrl-C (SIGINT).

The walk-through is parsed mechanically: `VAR=...` placeholders get the banner's
tokens of the clinicians named in that line's comment, `localhost:<contract port>`
becomes the banner's URL of the service on that port, `<id>` is bound by the first
answer that shows it, and each `# ->` line is the expected answer (a subset: `...`
stands for the rest; a list matches when each expected item matches some item).
The list of services is read from the banner, never written down here.
"""

from __future__ import annotations

import json
import os
import queue
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from kap_local.platform import DEFAULT_PORTS
from kap_shared.auth.cli import DEV_SECRET
from kap_shared.testing import offline_page_problems

pytestmark = [pytest.mark.kafka, pytest.mark.e2e]

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
SECTION = "### Driving the first flow by hand"
BANNER_END = "Ctrl-C stops everything."
SERVICE_LINE = re.compile(r"^  (?P<name>[a-z][\w-]*)\s+(?P<url>http://[\d.]+:\d+)\s+\(OpenAPI")
TOKEN_LINE = re.compile(r"^  (?P<sub>[\w-]+)\s+(?P<token>ey[\w-]+\.[\w-]+\.[\w-]+)$")
ID = "<id>"
RUNNER = (sys.executable, "-m", "kap_local.run")  # what the Makefile's `run` target calls
START_TIMEOUT = 300.0  # Kafka plus every service, on a loaded 2-core machine
ANSWER_TIMEOUT = 90.0


# -- the README's walk-through ------------------------------------------------------------


@dataclass
class Step:
    command: str
    expected: str | None = None


@dataclass
class Walkthrough:
    preamble: list[str] = field(default_factory=list)
    steps: list[Step] = field(default_factory=list)


def readme_walkthrough() -> Walkthrough:
    text = README.read_text()
    assert SECTION in text, f"README.md lost its section {SECTION!r}"
    match = re.search(r"```bash\n(.*?)```", text.split(SECTION, 1)[1], re.S)
    assert match, f"README.md's {SECTION!r} has no ```bash block"
    statements: list[str] = []
    expectations: dict[int, str] = {}
    for line in match.group(1).splitlines():
        if line.startswith("# ->"):
            expectations[len(statements) - 1] = line.removeprefix("# ->").strip()
        elif not line.strip() or line.startswith("#"):
            continue
        elif line[0].isspace():  # continuation of a multi-line command
            statements[-1] += "\n" + line
        else:
            statements.append(line)
    walk = Walkthrough()
    for index, statement in enumerate(statements):
        if statement.startswith("curl "):
            walk.steps.append(Step(statement, expectations.get(index)))
        else:
            walk.preamble.append(statement)
    return walk


def substitute_tokens(line: str, tokens: dict[str, str]) -> str:
    """`NURSE=...; THERAPIST=...   # copy from the banner (rn-north, th-north)`."""
    placeholders = re.findall(r"\b(\w+)=\.\.\.", line)
    if not placeholders:
        return line
    named = re.search(r"\(([^)]*)\)\s*$", line)
    assert named, f"README: say whose banner tokens {placeholders} are, e.g. (rn-north, ...)"
    subjects = [s.strip() for s in named.group(1).split(",")]
    assert len(subjects) == len(placeholders), line
    for variable, subject in zip(placeholders, subjects, strict=True):
        assert subject in tokens, f"README names {subject!r}; the banner has {sorted(tokens)}"
        line = line.replace(f"{variable}=...", f"{variable}='{tokens[subject]}'", 1)
    return line


def substitute_urls(command: str, urls: dict[str, str]) -> str:
    by_port = {str(port): urls[name] for name, port in DEFAULT_PORTS.items() if name in urls}

    def url_of(match: re.Match[str]) -> str:
        port = match.group(1)
        assert port in by_port, f"README calls localhost:{port}; the banner has {urls}"
        return by_port[port]

    return re.sub(r"\blocalhost:(\d+)", url_of, command)


def expectation(text: str) -> Any:
    """`{"outcome":"eligible",...}` -> the JSON with `...` (the rest) removed."""
    return json.loads(re.sub(r",?\s*\.\.\.", "", text))


def matches(expected: Any, actual: Any, bound: dict[str, str]) -> bool:
    if expected == ID:
        if ID not in bound and isinstance(actual, str):
            bound[ID] = actual
        return bool(actual == bound.get(ID))
    if isinstance(expected, dict):
        return isinstance(actual, dict) and all(
            key in actual and matches(value, actual[key], bound) for key, value in expected.items()
        )
    if isinstance(expected, list) and expected:
        return isinstance(actual, list) and all(
            any(matches(item, candidate, bound) for candidate in actual) for item in expected
        )
    return bool(expected == actual)


# -- the runner -----------------------------------------------------------------------------


@dataclass
class Banner:
    urls: dict[str, str]
    tokens: dict[str, str]
    text: str


class MakeRun:
    def __init__(self, work_dir: Path) -> None:
        env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "RULES_FILE")}
        self.work_dir = work_dir
        self.proc = subprocess.Popen(
            [*RUNNER, "--free-ports", "--kafka-port", "0", "--var-dir", str(work_dir)],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env={**env, "PYTHONUNBUFFERED": "1"},
            cwd=ROOT,
        )
        self.lines: queue.Queue[str | None] = queue.Queue()
        self.output: list[str] = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.put(line.rstrip("\n"))
        self.lines.put(None)

    def logs(self) -> str:
        tails = []
        for log in sorted((self.work_dir / "logs").glob("*.log")):
            tails.append(f"--- {log.name}\n" + "\n".join(log.read_text().splitlines()[-15:]))
        return "\n".join(["--- make run", *self.output, *tails])

    def banner(self) -> Banner:
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            try:
                line = self.lines.get(timeout=1.0)
            except queue.Empty:
                continue
            if line is None:
                code = self.proc.wait()
                pytest.fail(f"make run exited ({code}) before its banner:\n{self.logs()}")
            self.output.append(line)
            if line.strip() == BANNER_END:
                break
        else:
            pytest.fail(f"no banner after {START_TIMEOUT}s:\n{self.logs()}")
        urls = {m["name"]: m["url"] for line in self.output if (m := SERVICE_LINE.match(line))}
        tokens = {m["sub"]: m["token"] for line in self.output if (m := TOKEN_LINE.match(line))}
        return Banner(urls, tokens, "\n".join(self.output))

    def interrupt(self, timeout: float = 120.0) -> int:
        self.proc.send_signal(signal.SIGINT)
        try:
            code = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            pytest.fail(f"make run still running {timeout}s after SIGINT:\n{self.logs()}")
        while (line := self.lines.get(timeout=10)) is not None:
            self.output.append(line)
        return code


@pytest.fixture
def make_run(tmp_path: Path) -> Iterator[MakeRun]:
    runner = MakeRun(tmp_path / "var")
    yield runner
    if runner.proc.poll() is None:  # the test failed before its own SIGINT
        runner.proc.send_signal(signal.SIGINT)
        try:
            runner.proc.wait(timeout=120)
        except subprocess.TimeoutExpired:
            runner.proc.kill()


def run_bash(preamble: list[str], command: str) -> str:
    script = "set -euo pipefail\n" + "\n".join([*preamble, command])
    done = subprocess.run(["bash", "-c", script], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, f"{command}\nexit {done.returncode}: {done.stderr}"
    return done.stdout


# -- the test -------------------------------------------------------------------------------


def test_make_run_serves_the_readme_walkthrough_and_stops_on_ctrl_c(make_run: MakeRun) -> None:
    run_recipe = re.search(r"^run:.*\n\t(.+)$", (ROOT / "Makefile").read_text(), re.M)
    assert run_recipe, "the Makefile lost its run target"
    assert run_recipe.group(1).endswith(" ".join(RUNNER[1:])), "make run calls something else"
    walk = readme_walkthrough()
    assert [s.expected is not None for s in walk.steps] == [True] * len(walk.steps), (
        "every curl of the README's walk-through says what it answers (# -> ...)"
    )

    banner = make_run.banner()
    assert {"intake", "scheduling", "notifications"} <= set(banner.urls), banner.text
    assert {"rn-north", "th-north"} <= set(banner.tokens), banner.text
    # The console's URL comes first (a clinic opens it before anything else), records runs.
    first = next(line for line in banner.text.splitlines() if "http://" in line)
    assert first.strip().startswith("Care-team console"), banner.text
    console = first.split()[-1].rstrip("/")
    assert "records" in banner.urls, banner.text
    assert httpx.get(f"{console}/sign-in", timeout=30).status_code == 200

    preamble = [substitute_tokens(line, banner.tokens) for line in walk.preamble]
    bound: dict[str, str] = {}
    for step in walk.steps:
        assert step.expected is not None
        expected = expectation(step.expected)
        command = substitute_urls(step.command, banner.urls)
        if ID in command:
            assert ID in bound, f"{step.command!r} needs <id> before an answer showed it"
            command = command.replace(ID, bound[ID])
        # A POST is sent once; a read is repeated until the events have arrived.
        repeatable = "-XPOST" not in command
        deadline = time.monotonic() + (ANSWER_TIMEOUT if repeatable else 0)
        while True:
            answer = run_bash(preamble, command)
            try:
                actual = json.loads(answer)
            except json.JSONDecodeError:
                actual = answer
            if matches(expected, actual, bound):
                break
            if time.monotonic() >= deadline:
                pytest.fail(
                    f"README step\n{step.command}\nexpected {step.expected}\ngot {answer}\n"
                    f"{make_run.logs()}"
                )
            time.sleep(1.0)
    assert ID in bound

    # The seed CLI (the compose seed job's command) against the running platform:
    # idempotent, and it reaches notifications too.
    seeded = subprocess.run(
        [sys.executable, "-m", "kap_local.seed"],
        env={
            **os.environ,
            "SCHEDULING_URL": banner.urls["scheduling"],
            "NOTIFICATIONS_URL": banner.urls["notifications"],
            "KAP_JWT_SECRET": os.environ.get("KAP_JWT_SECRET", DEV_SECRET),
        },
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert seeded.returncode == 0, seeded.stderr
    assert seeded.stdout.strip() == "demo clinic network seeded"

    # /docs and /asyncapi render with no internet: every asset comes from the service.
    # (A service without such a page, e.g. a UI, answers 404 and is left out.)
    checked = set()
    with httpx.Client(timeout=30) as client:
        for name, url in banner.urls.items():
            for page in ("/docs", "/asyncapi"):
                if client.get(url + page).status_code == 404:
                    continue
                problems = offline_page_problems(client, url + page)
                assert not problems, f"{name}{page}: {problems}"
                checked.add(name)
    assert {"intake", "scheduling", "notifications"} <= checked

    assert make_run.interrupt() == 0, make_run.logs()
    assert make_run.output[-1] == "stopped.", make_run.logs()
    for url in banner.urls.values():
        with pytest.raises(httpx.ConnectError):
            httpx.get(f"{url}/healthz", timeout=5)
