"""Run the services and the console as separate OS processes (for `make run` and the
end-to-end tests): start, wait until ready, kill -9, restart, stop.

Each service gets its own port, database and log file; they share only the
Kafka bootstrap address and the development JWT secret.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import httpx

from .processes import free_port as free_port  # re-exported: tests and bench take it from here

if TYPE_CHECKING:
    from .postgres import LocalPostgres

DEFAULT_PORTS: dict[str, int] = {
    "console": 8000,
    "intake": 8001,
    "scheduling": 8002,
    "monitoring": 8003,
    "notifications": 8004,
    "records": 8005,
}
SERVICES = tuple(DEFAULT_PORTS)
# Deployables given no PostgreSQL database locally: the console holds no clinical state
# (its sign-in sessions stay in SQLite under its VAR_DIR).
STATELESS = frozenset({"console"})


def postgres_databases(postgres: LocalPostgres, prefix: str) -> dict[str, str]:
    """A database of its own on `postgres` for every service that keeps state, named
    `<prefix>_<service>`: the `database_urls` of a Platform deployed on PostgreSQL."""
    return {
        name: postgres.create_database(f"{prefix}_{name}")
        for name in SERVICES
        if name not in STATELESS
    }


# How often `Platform.start` picks fresh ports when a picked one was taken before the
# service bound it (see PortTaken).
PORT_ATTEMPTS = 3


class PortTaken(RuntimeError):
    """A service could not bind its port: something took it between `free_port()` and
    the bind (another process's server, or an outgoing connection's ephemeral port,
    which comes from the same range)."""


def console_env(ports: Mapping[str, int]) -> dict[str, str]:
    """The console calls the other services' APIs (server-side) at their local ports.
    Locally it signs clinicians in with the development secret and serves plain http."""
    env = {
        f"{name.upper()}_URL": f"http://127.0.0.1:{port}"
        for name, port in ports.items()
        if name != "console"
    }
    env.update({"DEV_SIGN_IN": "true", "SESSION_COOKIE_SECURE": "false"})
    return env


@dataclass
class ServiceProcess:
    name: str
    port: int
    env: dict[str, str]
    log_path: Path
    proc: subprocess.Popen[bytes] | None = None
    _log_file: object = field(default=None, repr=False)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        log = self.log_path.open("ab")
        self._log_file = log
        self.proc = subprocess.Popen(
            [sys.executable, "-m", f"kap_{self.name}"],
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            # Own process group: Ctrl-C in `make run` reaches the supervisor, which
            # then stops each service in order.
            start_new_session=True,
        )

    def wait_ready(self, timeout: float = 60.0) -> None:
        """Until /readyz says broker and database are reachable."""
        deadline = time.monotonic() + timeout
        last = "no answer"
        while time.monotonic() < deadline:
            if self.proc is not None and self.proc.poll() is not None:
                tail = self.tail()
                failure = PortTaken if "address already in use" in tail else RuntimeError
                raise failure(f"{self.name} exited ({self.proc.returncode}):\n{tail}")
            try:
                response = httpx.get(f"{self.url}/readyz", timeout=2.0)
                if response.status_code == 200:
                    return
                last = response.text
            except httpx.HTTPError as exc:
                last = repr(exc)
            time.sleep(0.2)
        raise TimeoutError(f"{self.name} not ready after {timeout}s ({last}):\n{self.tail()}")

    def kill(self, sig: int = signal.SIGKILL) -> None:
        """Send `sig` (default: SIGKILL, a crash) and wait for the process to end."""
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(sig)
        self.proc.wait(timeout=30)

    def stop(self, timeout: float = 30.0) -> None:
        """Graceful stop (SIGTERM); SIGKILL if it does not exit in time."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self._log_file is not None:
            self._log_file.close()  # type: ignore[attr-defined]
            self._log_file = None

    def restart(self, timeout: float = 60.0) -> None:
        self.stop()
        self.start()
        self.wait_ready(timeout)

    def tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except FileNotFoundError:
            return "(no log)"


class Platform:
    """The four services on one Kafka cluster, each with its own database."""

    def __init__(
        self,
        *,
        bootstrap: str,
        work_dir: Path,
        jwt_secret: str,
        ports: Mapping[str, int] | None = None,
        database_urls: Mapping[str, str] | None = None,
        extra_env: Mapping[str, str] | None = None,
        service_env: Mapping[str, Mapping[str, str]] | None = None,
        log_format: str = "json",
    ) -> None:
        self.bootstrap = bootstrap
        self.work_dir = work_dir
        self.jwt_secret = jwt_secret
        self._chosen_ports = ports is not None
        self._settings = (database_urls, extra_env, service_env, log_format)
        self.services: dict[str, ServiceProcess] = {}
        self._assign(dict(ports or {name: free_port() for name in SERVICES}))

    def _assign(self, ports: Mapping[str, int]) -> None:
        """Each service's process on its port (the console learns the others' ports)."""
        database_urls, extra_env, service_env, log_format = self._settings
        for name in SERVICES:
            env = {
                **os.environ,
                "KAFKA_BOOTSTRAP_SERVERS": self.bootstrap,
                "KAP_JWT_SECRET": self.jwt_secret,
                "HTTP_PORT": str(ports[name]),
                "VAR_DIR": str(self.work_dir / name),
                "LOG_FORMAT": log_format,
                "LOG_LEVEL": os.environ.get("LOG_LEVEL", "INFO"),
                "PYTHONUNBUFFERED": "1",
                **(extra_env or {}),
                **((service_env or {}).get(name, {})),
            }
            if name == "console":
                env = {**env, **console_env(ports), **((service_env or {}).get(name, {}))}
            if database_urls and name in database_urls:
                env["DATABASE_URL"] = database_urls[name]
            self.services[name] = ServiceProcess(
                name, ports[name], env, self.work_dir / "logs" / f"{name}.log"
            )

    def __getitem__(self, name: str) -> ServiceProcess:
        return self.services[name]

    def url(self, name: str) -> str:
        return self.services[name].url

    def start(self, names: Iterable[str] = SERVICES, timeout: float = 90.0) -> None:
        """Start `names` and wait until each is ready. Ports this platform picked itself
        are picked afresh when one was taken before its service bound it (PortTaken):
        the race `free_port()` cannot close; ports the caller chose are never moved."""
        chosen = list(names)
        for attempt in range(1, PORT_ATTEMPTS + 1):
            try:
                self._start(chosen, timeout)
                return
            except PortTaken:
                others_running = any(
                    service.proc is not None and service.proc.poll() is None
                    for name, service in self.services.items()
                    if name not in chosen
                )
                if self._chosen_ports or others_running or attempt == PORT_ATTEMPTS:
                    raise
                self.stop()
                self._assign({name: free_port() for name in SERVICES})

    def _start(self, chosen: list[str], timeout: float) -> None:
        try:
            for name in chosen:
                self.services[name].start()
            for name in chosen:
                self.services[name].wait_ready(timeout)
        except BaseException:
            # A start that fails leaves none of its processes behind: a caller that had
            # not reached its own `stop` yet (a benchmark's set-up) left them running.
            for name in reversed(chosen):
                self.services[name].stop()
            raise

    def stop(self) -> None:
        for service in reversed(list(self.services.values())):
            service.stop()
