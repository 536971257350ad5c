"""A real single-node Apache Kafka 4.x broker (KRaft) run from Maven Central jars.

No Docker and no Kafka tarball: ``deploy/local/kafka/pom.xml`` is a fetch-only
Maven project that copies the broker's runtime classpath into
``deploy/local/kafka/libs/`` (git-ignored), and :class:`LocalKafka` runs
``java ... kafka.Kafka server.properties`` as a child process bound to
127.0.0.1.

Library use (tests)::

    with LocalKafka() as kafka:          # temp work dir, free ports
        use(kafka.bootstrap)             # "127.0.0.1:PORT"

CLI (``make run`` / ``make kafka``)::

    python -m kap_local.kafka fetch
    python -m kap_local.kafka start --port 9092 --work-dir var/kafka   # foreground
    python -m kap_local.kafka status --work-dir var/kafka
    python -m kap_local.kafka stop --work-dir var/kafka
"""

from __future__ import annotations

import argparse
import asyncio
import atexit
import base64
import contextlib
import ctypes
import functools
import hashlib
import json
import logging
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Coroutine, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from types import FrameType
from typing import IO, Any, NoReturn, TypeVar

from filelock import FileLock
from tenacity import Retrying, retry_if_exception, stop_after_attempt

from .processes import LocalServer, free_ports

__all__ = [
    "KafkaSetupError",
    "KafkaStartError",
    "LocalKafka",
    "ensure_jars",
    "kafka_home",
    "kafka_version",
    "main",
    "read_pid",
    "stop_pid",
]

log = logging.getLogger(__name__)

_T = TypeVar("_T")

READY_LINE = "Kafka Server started"  # logged by kafka.server.KafkaRaftServer once unfenced
MARKER_NAME = ".kap-fetched.json"  # written last by ensure_jars(): "libs/ is complete"
PID_FILE = "kafka.pid"
MIN_JAVA = 17  # Kafka 4.x brokers need Java 17+
_BIND_ERRORS = ("Address already in use", "java.net.BindException")
_HOW_TO_INSTALL = (
    "Install a Java 17+ runtime and Maven 3.x (Debian/Ubuntu: "
    "`apt-get install openjdk-17-jre-headless maven`), or set JAVA_HOME."
)


class KafkaSetupError(RuntimeError):
    """Java/Maven missing or the jar fetch failed: the broker cannot be run at all."""


class KafkaStartError(RuntimeError):
    """The broker process died or did not become ready; the message ends with its log tail."""


# --------------------------------------------------------------------------- jars


def kafka_home() -> Path:
    """Folder holding pom.xml, log4j2.yaml and libs/ (override: env KAP_KAFKA_HOME)."""
    env = os.environ.get("KAP_KAFKA_HOME")
    # src/kap_local/kafka.py -> deploy/local/kafka (the workspace member is installed editable)
    return Path(env) if env else Path(__file__).resolve().parents[2] / "kafka"


def _pom_property(pom_text: str, name: str) -> str:
    # A regex and not an XML parser: it is our own small pom, and this keeps it dependency-free.
    m = re.search(rf"<{re.escape(name)}>\s*([^<\s]+)\s*</{re.escape(name)}>", pom_text)
    if not m:
        raise KafkaSetupError(f"<{name}> not found in {kafka_home() / 'pom.xml'}")
    return m.group(1)


def kafka_version() -> str:
    """The Kafka version pinned in pom.xml (``<kafka.version>``)."""
    return _pom_property((kafka_home() / "pom.xml").read_text(), "kafka.version")


def _read_marker(libs: Path) -> dict[str, Any] | None:
    try:
        data = json.loads((libs / MARKER_NAME).read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _marker_ok(libs: Path, pom_sha256: str) -> bool:
    """libs/ is usable when the marker matches the current pom and every listed jar exists."""
    marker = _read_marker(libs)
    if marker is None or marker.get("pom_sha256") != pom_sha256:
        return False
    jars = marker.get("jars")
    return isinstance(jars, list) and bool(jars) and all((libs / str(j)).is_file() for j in jars)


def _jar_list(libs: Path) -> list[str]:
    marker = _read_marker(libs)
    if marker is None:
        raise KafkaSetupError(f"{libs} has no {MARKER_NAME}; run ensure_jars() first")
    return [str(j) for j in marker["jars"]]


def _require_tool(name: str, purpose: str) -> str:
    found = shutil.which(name)
    if not found:
        raise KafkaSetupError(f"`{name}` not found on PATH ({purpose}). {_HOW_TO_INSTALL}")
    return found


def find_java() -> str:
    """Path of a Java 17+ ``java`` (JAVA_HOME first, then PATH)."""
    return _java_info()[0]


@functools.cache
def _java_info() -> tuple[str, str]:
    """(path of java, its ``-version`` text); checks it is Java 17+."""
    java_home = os.environ.get("JAVA_HOME")
    candidate = Path(java_home, "bin", "java") if java_home else None
    java = (
        str(candidate)
        if candidate and candidate.is_file()
        else _require_tool("java", "needed to run the Kafka broker")
    )
    try:
        out = subprocess.run(
            [java, "-version"], capture_output=True, text=True, timeout=30, check=False
        )
    except (OSError, subprocess.SubprocessError) as exc:
        raise KafkaSetupError(f"cannot run `{java} -version`: {exc}. {_HOW_TO_INSTALL}") from exc
    m = re.search(r'version "(\d+)(?:\.(\d+))?', out.stderr + out.stdout)
    if not m:
        raise KafkaSetupError(f"cannot parse `{java} -version` output: {out.stderr!r}")
    major = int(m.group(1)) if m.group(1) != "1" else int(m.group(2) or 0)  # "1.8" -> 8
    if major < MIN_JAVA:
        raise KafkaSetupError(
            f"{java} is Java {major}; Kafka 4.x brokers need Java {MIN_JAVA}+. {_HOW_TO_INSTALL}"
        )
    return java, out.stderr + out.stdout


def _cds_archive(libs: Path, jars: Sequence[str]) -> Path:
    """AppCDS archive path for this JVM build + classpath (a mismatch would be rejected).

    Kept in libs/ so a re-fetch (new classpath) drops it too.
    """
    java, version = _java_info()
    key = hashlib.sha256("\n".join([java, version, *jars]).encode()).hexdigest()[:16]
    return libs / f"kafka-cds-{key}.jsa"


def ensure_jars(*, offline: bool = False, timeout: float = 900) -> Path:
    """Make sure ``libs/`` holds the broker classpath for the pinned version; return it.

    Idempotent and cheap when already fetched: a marker file (``libs/.kap-fetched.json``,
    naming the Kafka version and the pom's hash) is checked and Maven is not run.
    Otherwise ``mvn -B -q dependency:copy-dependencies`` fills a scratch dir that
    replaces ``libs/`` atomically, so a stale or half-fetched classpath is never used.
    """
    home = kafka_home()
    pom = home / "pom.xml"
    libs = home / "libs"
    try:
        pom_text = pom.read_text()
    except OSError as exc:
        raise KafkaSetupError(f"cannot read {pom}: {exc}") from exc
    pom_sha = hashlib.sha256(pom_text.encode()).hexdigest()
    if _marker_ok(libs, pom_sha):
        return libs

    mvn = _require_tool("mvn", "needed once to fetch the Kafka jars from Maven Central")
    find_java()  # fail early and clearly: Maven needs Java too
    version = _pom_property(pom_text, "kafka.version")
    # Serialises concurrent fetches (two pytest sessions, `make run` + tests).
    with FileLock(home / ".fetch.lock"):
        if _marker_ok(libs, pom_sha):  # another process fetched while we waited
            return libs
        scratch = Path(tempfile.mkdtemp(prefix=".libs-", dir=home))
        scratch.chmod(0o755)  # mkdtemp makes it 0700; libs/ is shared, read-only data
        try:
            cmd = [mvn, "-B", "-q", "-f", str(pom)]
            cmd += ["-o"] if offline else []
            cmd += ["dependency:copy-dependencies", f"-Dkap.libs.dir={scratch}"]
            log.info("fetching Kafka %s jars with Maven into %s", version, libs)
            started = time.monotonic()
            try:
                res = subprocess.run(
                    cmd, cwd=home, capture_output=True, text=True, timeout=timeout, check=False
                )
            except subprocess.TimeoutExpired as exc:
                raise KafkaSetupError(f"`{' '.join(cmd)}` timed out after {timeout:.0f}s") from exc
            if res.returncode != 0:
                raise KafkaSetupError(
                    f"`{' '.join(cmd)}` failed (exit {res.returncode}); Maven Central must be "
                    f"reachable on the first run.\n{(res.stdout + res.stderr)[-4000:]}"
                )
            jars = sorted(p.name for p in scratch.glob("*.jar"))
            if not any(j.startswith("kafka_2.13-") for j in jars):
                raise KafkaSetupError(f"Maven ran but {scratch} holds no kafka_2.13 jar: {jars}")
            (scratch / MARKER_NAME).write_text(
                json.dumps(
                    {
                        "kafka_version": version,
                        "log4j_version": _pom_property(pom_text, "log4j.version"),
                        "pom_sha256": pom_sha,
                        "fetch_seconds": round(time.monotonic() - started, 1),
                        "jars": jars,
                    },
                    indent=1,
                )
                + "\n"
            )
            # Swap: old libs/ (other version, or incomplete) goes away entirely,
            # otherwise two kafka_2.13 jars could end up on one classpath.
            if libs.exists():
                old = home / f".libs-old-{os.getpid()}"
                libs.rename(old)
                shutil.rmtree(old, ignore_errors=True)
            scratch.rename(libs)
            log.info("fetched Kafka %s (%d jars)", version, len(jars))
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
    return libs


# --------------------------------------------------------------------------- helpers


def _cluster_id() -> str:
    """Same format as org.apache.kafka.common.Uuid.toString(): 22 url-safe base64 chars."""
    while True:
        cid = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        if not cid.startswith("-"):  # StorageTool would read it as an option
            return cid


def _tail(path: Path, lines: int = 60) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return f"(no log at {path})"
    return "\n".join(text.splitlines()[-lines:])


def _run_async(factory: Callable[[], Coroutine[Any, Any, _T]]) -> _T:
    # Own thread + own loop: works whether or not the caller runs an event loop
    # (pytest-asyncio session loop, plain scripts).
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="kafka-probe") as ex:
        return ex.submit(lambda: asyncio.run(factory())).result()


async def _describe_cluster(bootstrap: str, budget_s: float) -> dict[str, Any]:
    from aiokafka.admin import AIOKafkaAdminClient

    admin = AIOKafkaAdminClient(
        bootstrap_servers=bootstrap, request_timeout_ms=max(1000, int(budget_s * 1000))
    )
    try:
        async with asyncio.timeout(budget_s):
            await admin.start()
            info: dict[str, Any] = await admin.describe_cluster()
    finally:
        await admin.close()
    if not info.get("brokers"):
        raise KafkaStartError(f"metadata from {bootstrap} lists no brokers yet: {info}")
    return info


def _pdeathsig_preexec() -> Callable[[], None] | None:
    """preexec_fn making the kernel SIGTERM the broker if this process dies (even by SIGKILL).

    Linux only, and only when called from the main thread: PR_SET_PDEATHSIG fires when
    the *thread* that forked exits, which would kill the broker early from a worker thread.
    """
    if sys.platform != "linux" or threading.current_thread() is not threading.main_thread():
        return None
    try:
        prctl = ctypes.CDLL(None, use_errno=True).prctl  # resolved before fork, not in the child
    except (OSError, AttributeError):
        return None
    parent = os.getpid()

    def preexec() -> None:
        prctl(1, int(signal.SIGTERM))  # 1 = PR_SET_PDEATHSIG
        if os.getppid() != parent:  # parent already gone before prctl took effect
            os.kill(os.getpid(), signal.SIGTERM)

    return preexec


def _is_kafka_pid(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return False  # someone else's process: never ours to stop
    try:  # guard against pid reuse: must really be a kafka.Kafka JVM
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return True  # no /proc (macOS): trust the pid file
    return b"kafka.Kafka" in cmdline


def read_pid(work_dir: Path) -> int | None:
    """Pid of the live broker recorded in ``work_dir/kafka.pid``, or None."""
    try:
        pid = int((Path(work_dir) / PID_FILE).read_text().strip())
    except (OSError, ValueError):
        return None
    return pid if _is_kafka_pid(pid) else None


def stop_pid(work_dir: Path, timeout: float = 30) -> bool:
    """Stop the broker recorded in ``work_dir/kafka.pid`` (SIGTERM, then SIGKILL).

    Returns False when no live broker was recorded there.
    """
    pid = read_pid(work_dir)
    if pid is None:
        return False
    os.kill(pid, signal.SIGTERM)  # runs Kafka's shutdown hook, like kafka-server-stop.sh
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not _is_kafka_pid(pid):
            return True
        time.sleep(0.1)
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)
    return True


def _advertised_port(work_dir: Path) -> int | None:
    try:
        text = (Path(work_dir) / "server.properties").read_text()
    except OSError:
        return None
    m = re.search(r"^advertised\.listeners=PLAINTEXT://[^:]+:(\d+)", text, re.M)
    return int(m.group(1)) if m else None


# --------------------------------------------------------------------------- broker


class LocalKafka(LocalServer):
    """One single-node Kafka broker (combined broker+controller, KRaft) as a child process.

    ``work_dir=None`` uses a fresh temp dir that :meth:`stop` deletes; a given
    ``work_dir`` is kept, and a later :meth:`start` reuses its formatted storage.
    Ports default to free ones (retried once on a bind race).
    """

    def __init__(
        self,
        work_dir: Path | None = None,
        port: int | None = None,
        controller_port: int | None = None,
        heap: str = "512m",
        partitions: int = 3,
        *,
        overrides: Mapping[str, str] | None = None,
        jvm_args: Sequence[str] = (),
        cds: bool = True,
    ) -> None:
        if port is not None and port == controller_port:
            raise ValueError("port and controller_port must differ")
        self._requested_work_dir = Path(work_dir).resolve() if work_dir is not None else None
        self._work_dir: Path | None = self._requested_work_dir
        self._requested_port = port
        self._requested_controller_port = controller_port
        self.heap = heap
        self.partitions = partitions
        self.overrides: dict[str, str] = dict(overrides or {})
        self.jvm_args = list(jvm_args)
        # AppCDS: the first clean stop dumps the loaded classes into an archive that
        # later JVMs (format + broker) map in; roughly halves the start time.
        self.cds = cds
        self._cds_dump: tuple[Path, Path] | None = None  # (temp file being written, final)
        self._port: int | None = None
        self._controller_port: int | None = None
        self._proc: subprocess.Popen[bytes] | None = None
        self._out: IO[bytes] | None = None
        self.cluster_id: str | None = None
        self.startup_seconds: float | None = None  # launch -> ready, for reporting
        self._launched_at = 0.0

    # ---- properties

    @property
    def work_dir(self) -> Path:
        if self._work_dir is None:
            raise RuntimeError("LocalKafka has no work dir before start()")
        return self._work_dir

    @property
    def bootstrap(self) -> str:
        """``"127.0.0.1:PORT"``; only valid while started."""
        if self._port is None or self._proc is None:
            raise RuntimeError("LocalKafka is not started")
        return f"127.0.0.1:{self._port}"

    @property
    def port(self) -> int | None:
        return self._port

    @property
    def controller_port(self) -> int | None:
        return self._controller_port

    @property
    def pid(self) -> int | None:
        """Pid of the live broker JVM, else None."""
        if self._proc is None or self._proc.poll() is not None:
            return None
        return self._proc.pid

    @property
    def process(self) -> subprocess.Popen[bytes] | None:
        return self._proc

    @property
    def log_file(self) -> Path:
        """Broker console output (WARN+ and the readiness line); INFO is in logs/server.log."""
        return self.work_dir / "logs" / "broker.out"

    # ---- lifecycle (`with LocalKafka() as kafka:` from LocalServer)

    def start(self, timeout: float = 90) -> str:
        """Format storage if needed, launch the broker, wait until ready; return the bootstrap."""
        if self.pid is not None:
            raise RuntimeError(f"LocalKafka already running (pid {self.pid})")
        libs = ensure_jars()
        java = find_java()
        if self._work_dir is None:
            self._work_dir = Path(tempfile.mkdtemp(prefix="kap-kafka-"))
        work = self.work_dir
        (work / "logs").mkdir(parents=True, exist_ok=True)
        other = read_pid(work)
        if other is not None:
            raise RuntimeError(f"another broker (pid {other}) is running in {work}")

        deadline = time.monotonic() + timeout
        auto_ports = self._requested_port is None or self._requested_controller_port is None
        # Ports picked free can be taken before the broker binds them: once more with new ones.
        retrying = Retrying(
            stop=stop_after_attempt(2 if auto_ports else 1),
            retry=retry_if_exception(
                lambda exc: (
                    isinstance(exc, KafkaStartError) and any(s in str(exc) for s in _BIND_ERRORS)
                )
            ),
            before_sleep=lambda state: log.warning(
                "Kafka port race (%s); retrying with new ports",
                str(state.outcome.exception() if state.outcome else "")[:80],
            ),
            reraise=True,
        )
        try:
            for attempt in retrying:
                with attempt:
                    free = iter(free_ports(2))
                    self._port = self._requested_port or next(free)
                    self._controller_port = self._requested_controller_port or next(free)
                    try:
                        self._write_properties()
                        if not (work / "data" / "meta.properties").exists():
                            self._format(java, libs, deadline)
                        self._launch(java, libs)
                        self._wait_ready(deadline)
                    except BaseException:  # never leak a JVM, whatever stopped the start
                        self._kill()
                        raise
        except BaseException:  # KeyboardInterrupt, timeouts in callers, a lost race twice
            self._cleanup_temp()
            raise
        return self.bootstrap

    def stop(self, timeout: float = 30) -> None:
        """SIGTERM (Kafka's clean shutdown), wait up to ``timeout``, then SIGKILL."""
        proc = self._proc
        if proc is not None and proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                log.warning("Kafka pid %d ignored SIGTERM for %.0fs; killing", proc.pid, timeout)
                proc.kill()
                proc.wait(10)
        self._finish_cds_dump(proc.returncode if proc is not None else None)
        self._release()
        self._cleanup_temp()

    # ---- internals

    def _java_base(self, java: str, libs: Path, *, dump_cds: bool = False) -> list[str]:
        jars = _jar_list(libs)
        classpath = os.pathsep.join(str(libs / j) for j in jars)
        cds_args: list[str] = []
        if self.cds:
            archive = _cds_archive(libs, jars)
            if archive.is_file():
                cds_args = [f"-XX:SharedArchiveFile={archive}"]
            elif dump_cds:  # written at JVM exit; renamed into place only after a clean stop
                tmp = archive.with_name(f".{archive.name}.{uuid.uuid4().hex[:8]}.tmp")
                self._cds_dump = (tmp, archive)
                cds_args = [f"-XX:ArchiveClassesAtExit={tmp}"]
        return [
            java,
            f"-Xmx{self.heap}",
            "-Xms64m",  # small start: RSS grows only as needed
            "-XX:+UseSerialGC",  # a test broker needs no concurrent GC threads
            "-XX:TieredStopAtLevel=1",  # C1 only: faster start, smaller code cache
            "-XX:+ExitOnOutOfMemoryError",
            "-XX:-UsePerfData",  # no /tmp/hsperfdata_* files
            "-Djava.awt.headless=true",
            f"-Dkafka.logs.dir={self.work_dir / 'logs'}",
            f"-Dlog4j2.configurationFile={kafka_home() / 'log4j2.yaml'}",
            *cds_args,
            *self.jvm_args,
            "-cp",
            classpath,
        ]

    def _write_properties(self) -> None:
        port, cport = self._port, self._controller_port
        props: dict[str, str] = {
            "process.roles": "broker,controller",
            "node.id": "1",
            # Static voters (no --standalone): the controller endpoint lives only in this
            # file, so a reused work dir may come back on other ports.
            "controller.quorum.voters": f"1@127.0.0.1:{cport}",
            "listeners": f"PLAINTEXT://127.0.0.1:{port},CONTROLLER://127.0.0.1:{cport}",
            "advertised.listeners": f"PLAINTEXT://127.0.0.1:{port}",
            "inter.broker.listener.name": "PLAINTEXT",
            "controller.listener.names": "CONTROLLER",
            "listener.security.protocol.map": "CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT",
            "log.dirs": str(self.work_dir / "data"),
            "num.partitions": str(self.partitions),
            "auto.create.topics.enable": "true",
            # One node: internal topics must be RF 1 / min ISR 1 (defaults 3/2 would leave
            # consumer groups at COORDINATOR_NOT_AVAILABLE); 1 partition = quick first use.
            "offsets.topic.replication.factor": "1",
            "offsets.topic.num.partitions": "1",
            "transaction.state.log.replication.factor": "1",
            "transaction.state.log.min.isr": "1",
            "transaction.state.log.num.partitions": "1",
            "share.coordinator.state.topic.replication.factor": "1",
            "share.coordinator.state.topic.min.isr": "1",
            "share.coordinator.state.topic.num.partitions": "1",
            # First group join would otherwise wait 3 s.
            "group.initial.rebalance.delay.ms": "0",
            # Default 128 MiB is allocated on the heap; must stay > 1 MiB per cleaner thread.
            "log.cleaner.dedupe.buffer.size": "1048577",
            "num.network.threads": "2",
            "num.io.threads": "2",
            "num.recovery.threads.per.data.dir": "1",
        }
        props.update(self.overrides)
        text = "# generated by kap_local.kafka.LocalKafka; rewritten on every start\n"
        text += "".join(f"{k}={v}\n" for k, v in props.items())
        (self.work_dir / "server.properties").write_text(text)

    def _format(self, java: str, libs: Path, deadline: float) -> None:
        cmd = [*self._java_base(java, libs), "kafka.tools.StorageTool", "format"]
        cmd += ["-t", _cluster_id(), "-c", str(self.work_dir / "server.properties")]
        try:
            res = subprocess.run(
                cmd,
                capture_output=True,
                text=True,
                timeout=max(5.0, deadline - time.monotonic()),
                check=False,
            )
        except subprocess.TimeoutExpired as exc:
            raise KafkaStartError("kafka.tools.StorageTool format timed out") from exc
        if res.returncode != 0:
            raise KafkaStartError(
                f"kafka.tools.StorageTool format failed (exit {res.returncode}):\n"
                f"{(res.stdout + res.stderr)[-4000:]}"
            )

    def _launch(self, java: str, libs: Path) -> None:
        out = self.log_file
        if out.exists():  # keep the previous run's console output for post-mortems
            out.replace(out.with_suffix(".out.1"))
        self._out = out.open("wb")
        cmd = [
            *self._java_base(java, libs, dump_cds=True),
            "kafka.Kafka",
            str(self.work_dir / "server.properties"),
        ]
        self._launched_at = time.monotonic()
        self._proc = subprocess.Popen(
            cmd,
            cwd=self.work_dir,
            stdin=subprocess.DEVNULL,
            stdout=self._out,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # Ctrl-C reaches us, and we stop the broker cleanly
            preexec_fn=_pdeathsig_preexec(),  # only a prctl() call runs in the child
        )
        (self.work_dir / PID_FILE).write_text(f"{self._proc.pid}\n")
        atexit.register(self._atexit_stop)

    def _wait_ready(self, deadline: float) -> None:
        proc = self._proc
        assert proc is not None
        log_seen = False
        last_err: BaseException | None = None
        while True:
            rc = proc.poll()
            if rc is not None:
                raise KafkaStartError(
                    f"Kafka broker exited with code {rc} during start; "
                    f"tail of {self.log_file}:\n{_tail(self.log_file)}"
                )
            if not log_seen:
                log_seen = READY_LINE in self.log_file.read_text(errors="replace")
            if log_seen:  # the log line alone is not proof: require a real client round-trip
                try:
                    info = _run_async(lambda: _describe_cluster(self.bootstrap, 5.0))
                except Exception as exc:
                    last_err = exc
                else:
                    self.cluster_id = str(info.get("cluster_id"))
                    self.startup_seconds = time.monotonic() - self._launched_at
                    log.info(
                        "Kafka ready at %s (pid %d) in %.1fs",
                        self.bootstrap,
                        proc.pid,
                        self.startup_seconds,
                    )
                    return
            if time.monotonic() > deadline:
                what = "admin round-trip failing" if log_seen else f"no {READY_LINE!r} line"
                raise KafkaStartError(
                    f"Kafka broker not ready before the timeout ({what}; last error: {last_err!r});"
                    f" tail of {self.log_file}:\n{_tail(self.log_file)}"
                )
            time.sleep(0.1)

    def _kill(self) -> None:
        if self._proc is not None and self._proc.poll() is None:
            self._proc.kill()
            self._proc.wait(10)
        self._finish_cds_dump(None)
        self._release()

    def _finish_cds_dump(self, returncode: int | None) -> None:
        if self._cds_dump is None:
            return
        tmp, archive = self._cds_dump
        self._cds_dump = None
        clean_exit = returncode in (0, 128 + signal.SIGTERM, -signal.SIGTERM)
        try:
            if clean_exit and tmp.is_file() and tmp.stat().st_size > 0:
                os.replace(tmp, archive)  # atomic: concurrent brokers never see half a file
                log.info("wrote AppCDS archive %s", archive)
        finally:
            tmp.unlink(missing_ok=True)

    def _release(self) -> None:
        atexit.unregister(self._atexit_stop)
        if self._out is not None:
            self._out.close()
            self._out = None
        if self._proc is not None and self._work_dir is not None:
            pid_file = self._work_dir / PID_FILE
            with contextlib.suppress(OSError, ValueError):
                if int(pid_file.read_text().strip()) == self._proc.pid:
                    pid_file.unlink()
        self._proc = None

    def _cleanup_temp(self) -> None:
        if self._requested_work_dir is None and self._work_dir is not None:
            shutil.rmtree(self._work_dir, ignore_errors=True)
            self._work_dir = None

    def _atexit_stop(self) -> None:
        with contextlib.suppress(Exception):
            self.stop(timeout=15)

    def __repr__(self) -> str:
        state = f"pid={self.pid} bootstrap=127.0.0.1:{self._port}" if self.pid else "stopped"
        return f"<LocalKafka {state} work_dir={self._work_dir}>"


# --------------------------------------------------------------------------- CLI


class _Shutdown(BaseException):
    """Raised from the SIGTERM/SIGINT handler to unwind into the broker's clean stop."""


def _on_signal(signum: int, frame: FrameType | None) -> NoReturn:
    # Ignore repeats so the clean stop in `finally` is not interrupted.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    raise _Shutdown(signum)


def _cmd_start(args: argparse.Namespace) -> int:
    broker = LocalKafka(
        work_dir=Path(args.work_dir),
        port=args.port,
        controller_port=args.controller_port,
        heap=args.heap,
        partitions=args.partitions,
    )
    signal.signal(signal.SIGINT, _on_signal)
    signal.signal(signal.SIGTERM, _on_signal)
    try:
        bootstrap = broker.start(timeout=args.timeout)
        print(
            f"kafka {kafka_version()} ready: KAFKA_BOOTSTRAP_SERVERS={bootstrap} "
            f"pid={broker.pid} work_dir={broker.work_dir} "
            f"({broker.startup_seconds or 0:.1f}s)",
            flush=True,
        )
        proc = broker.process
        assert proc is not None
        rc = proc.wait()  # foreground until a signal or the broker dies
        if rc in (0, 128 + signal.SIGTERM):  # `... stop` (or kill -TERM) ended the broker
            print(f"kafka: broker stopped (exit {rc})", flush=True)
            return 0
        print(
            f"kafka broker exited unexpectedly (code {rc}); tail of {broker.log_file}:\n"
            f"{_tail(broker.log_file)}",
            file=sys.stderr,
            flush=True,
        )
        return 1
    except _Shutdown:
        print("kafka: stopping", flush=True)
        return 0
    except (KafkaSetupError, KafkaStartError) as exc:
        print(f"kafka: {exc}", file=sys.stderr, flush=True)
        return 1
    finally:
        broker.stop()


def _cmd_stop(args: argparse.Namespace) -> int:
    if stop_pid(Path(args.work_dir), timeout=args.timeout):
        print(f"kafka: stopped broker in {args.work_dir}")
    else:
        print(f"kafka: no running broker in {args.work_dir}")
    return 0


def _cmd_status(args: argparse.Namespace) -> int:
    pid = read_pid(Path(args.work_dir))
    if pid is None:
        print(f"kafka: not running (work dir {args.work_dir})")
        return 1
    print(f"kafka: running pid={pid} bootstrap=127.0.0.1:{_advertised_port(Path(args.work_dir))}")
    return 0


def _cmd_fetch(args: argparse.Namespace) -> int:
    started = time.monotonic()
    try:
        libs = ensure_jars(offline=args.offline)
    except KafkaSetupError as exc:
        print(f"kafka: {exc}", file=sys.stderr)
        return 1
    print(f"kafka {kafka_version()} jars in {libs} ({time.monotonic() - started:.1f}s)")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m kap_local.kafka",
        description="Single-node Apache Kafka (KRaft) from Maven Central jars.",
    )
    sub = parser.add_subparsers(dest="command", required=True)
    p_fetch = sub.add_parser("fetch", help="only fetch the jars (needs Maven once)")
    p_fetch.add_argument("--offline", action="store_true", help="mvn -o: use ~/.m2 only")
    p_fetch.set_defaults(func=_cmd_fetch)
    p_start = sub.add_parser("start", help="run a broker in the foreground until SIGINT/SIGTERM")
    p_start.add_argument("--port", type=int, default=9092)
    p_start.add_argument("--controller-port", type=int, default=None, help="default: free port")
    p_start.add_argument("--heap", default="512m")
    p_start.add_argument("--partitions", type=int, default=3)
    p_start.add_argument("--timeout", type=float, default=90)
    p_start.set_defaults(func=_cmd_start)
    p_stop = sub.add_parser("stop", help="stop the broker recorded in WORK_DIR/kafka.pid")
    p_stop.add_argument("--timeout", type=float, default=30)
    p_stop.set_defaults(func=_cmd_stop)
    p_status = sub.add_parser("status", help="exit 0 if a broker runs in WORK_DIR, else 1")
    p_status.set_defaults(func=_cmd_status)
    for p in (p_start, p_stop, p_status):
        p.add_argument("--work-dir", default="var/kafka")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    logging.getLogger("aiokafka").setLevel(logging.WARNING)  # readiness-probe chatter
    rc: int = args.func(args)
    return rc


if __name__ == "__main__":
    sys.exit(main())
