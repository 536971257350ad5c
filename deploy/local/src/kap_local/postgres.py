"""A throw-away local PostgreSQL server for the test-suite and ``make run``.

It runs the stock server binaries (Debian's ``postgresql`` package, or any ``initdb`` on PATH)
against a private data directory with trust authentication on 127.0.0.1 only. PostgreSQL
refuses to run as root, so when we are root the cluster is owned by and the server runs as an
unprivileged user (``postgres`` if it exists, else ``nobody``, else a ``kap-postgres`` system
user created on the spot).

Library use::

    with LocalPostgres() as pg:            # temp work dir, free port; removed on stop()
        url = pg.create_database("intake")  # postgresql://postgres@127.0.0.1:PORT/intake

CLI (foreground until SIGINT/SIGTERM, then a clean shutdown)::

    python -m kap_local.postgres start --work-dir var/postgres --port 5432 \\
        --databases intake,scheduling,monitoring,notifications
    python -m kap_local.postgres stop --work-dir var/postgres
"""

from __future__ import annotations

import argparse
import atexit
import contextlib
import logging
import os
import pwd
import re
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from urllib.parse import quote

from tenacity import Retrying, retry_if_exception_type, stop_after_attempt

from .processes import LocalServer, free_port

__all__ = ["LocalPostgres", "find_pg_bin"]

log = logging.getLogger(__name__)

INSTALL_HINT = "deploy/local/install-postgres.sh"
DEBIAN_PG_ROOT = Path("/usr/lib/postgresql")
REQUIRED_BINARIES = ("initdb", "pg_ctl", "postgres", "psql")
HOST = "127.0.0.1"
SUPERUSER = "postgres"
# Linux caps a unix socket path at 107 bytes (macOS at 103); keep a margin.
MAX_SOCKET_PATH = 100


def _has_binaries(bin_dir: Path) -> bool:
    return all(os.access(bin_dir / name, os.X_OK) for name in REQUIRED_BINARIES)


def _version_key(bin_dir: Path) -> tuple[int, ...]:
    # /usr/lib/postgresql/<major>/bin; non-numeric names sort last.
    digits = re.findall(r"\d+", bin_dir.parent.name)
    return tuple(int(d) for d in digits) or (-1,)


def find_pg_bin() -> Path:
    """Directory holding initdb, pg_ctl, postgres and psql.

    ``$KAP_PG_BIN`` wins if set; then the directory of ``initdb`` on PATH (symlinks resolved, so
    Debian's /usr/local/bin links lead to the real dir with ``psql``); then
    /usr/lib/postgresql/*/bin, newest major version first.
    """
    override = os.environ.get("KAP_PG_BIN")
    if override:
        if _has_binaries(Path(override)):
            return Path(override)
        raise RuntimeError(f"KAP_PG_BIN={override} lacks one of {', '.join(REQUIRED_BINARIES)}")
    candidates: list[Path] = []
    on_path = shutil.which("initdb")
    if on_path:
        candidates.append(Path(on_path).resolve().parent)
    candidates += sorted(DEBIAN_PG_ROOT.glob("*/bin"), key=_version_key, reverse=True)
    for bin_dir in candidates:
        if _has_binaries(bin_dir):
            return bin_dir
    raise RuntimeError(
        "PostgreSQL server binaries (initdb, pg_ctl, postgres, psql) not found on PATH or under "
        f"{DEBIAN_PG_ROOT}/*/bin; run {INSTALL_HINT} (apt-get install postgresql)"
    )


def _pg_major(bin_dir: Path) -> int:
    out = subprocess.run(
        [str(bin_dir / "postgres"), "--version"], capture_output=True, text=True, check=True
    ).stdout
    match = re.search(r"(\d+)", out)
    if not match:
        raise RuntimeError(f"cannot parse postgres version from {out!r}")
    return int(match.group(1))


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, owned by someone else
        return True
    # A zombie (exited, not yet reaped by its parent) still answers kill(pid, 0).
    with contextlib.suppress(OSError, IndexError):
        stat_line = Path(f"/proc/{pid}/stat").read_text()
        return stat_line.rsplit(")", 1)[1].split()[0] != "Z"
    return True


def _looks_like_postgres(pid: int) -> bool:
    # After a container restart a stale postmaster.pid may name an unrelated live process
    # (often PID 1); never signal that. Without /proc we cannot tell, so trust the file.
    try:
        comm = Path(f"/proc/{pid}/comm").read_text().strip()
    except FileNotFoundError:
        return not Path("/proc/self").exists()
    except OSError:
        return True
    return comm.startswith(("postgres", "postmaster"))


@dataclass(frozen=True)
class _User:
    """The unprivileged account the server runs as when we are root."""

    name: str
    uid: int
    gid: int


def _system_user() -> _User:
    for name in ("postgres", "nobody"):
        try:
            entry = pwd.getpwnam(name)
        except KeyError:
            continue
        return _User(name, entry.pw_uid, entry.pw_gid)
    name = "kap-postgres"
    subprocess.run(
        ["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", name],
        check=True,
        capture_output=True,
    )
    entry = pwd.getpwnam(name)
    return _User(name, entry.pw_uid, entry.pw_gid)


def _check_traversable(path: Path, user: _User) -> None:
    # The server chdirs into the data dir; a root-only ancestor (pytest's 0700
    # /tmp/pytest-of-root is the classic) makes it fail with a bare EACCES. The server runs with
    # no supplementary groups (extra_groups=[]), so only its primary gid counts.
    for directory in [path, *path.parents]:
        st = directory.stat()
        if st.st_uid == user.uid:
            ok = bool(st.st_mode & stat.S_IXUSR)
        elif st.st_gid == user.gid:
            ok = bool(st.st_mode & stat.S_IXGRP)
        else:
            ok = bool(st.st_mode & stat.S_IXOTH)
        if not ok:
            raise RuntimeError(
                f"{directory} is not traversable by user {user.name!r}, who must run PostgreSQL "
                f"because we are root; pick a work dir elsewhere (e.g. under /tmp, or pass "
                f"work_dir=None for a fresh temp dir)"
            )


class _PortInUseError(RuntimeError):
    pass


class LocalPostgres(LocalServer):
    """One PostgreSQL cluster in ``work_dir`` (data/, run/ socket dir, postgres.log).

    ``work_dir=None`` makes a temp dir that ``stop()`` deletes; an explicit work dir is kept, so
    a later ``start()`` reuses the cluster. ``port=None`` picks a free port (re-picked if it is
    snatched before the server binds it).
    """

    def __init__(self, work_dir: Path | None = None, port: int | None = None) -> None:
        self._owns_work_dir = work_dir is None
        self.work_dir = (
            Path(tempfile.mkdtemp(prefix="kap-pg-")) if work_dir is None else Path(work_dir)
        ).absolute()
        self._port_fixed = port is not None
        self.port = port if port is not None else free_port(HOST)
        self.user = SUPERUSER
        self.data_dir = self.work_dir / "data"
        self.log_file = self.work_dir / "postgres.log"
        self.socket_dir = self.work_dir / "run"
        self._short_socket_dir: Path | None = None
        self._bin_dir: Path | None = None
        self._proc: subprocess.Popen[bytes] | None = None

    # -- public API ---------------------------------------------------------------------------

    @property
    def bin_dir(self) -> Path:
        if self._bin_dir is None:
            self._bin_dir = find_pg_bin()
        return self._bin_dir

    def url(self, dbname: str = "postgres") -> str:
        user, db = quote(self.user, safe=""), quote(dbname, safe="")
        return f"postgresql://{user}@{HOST}:{self.port}/{db}"

    def start(self, timeout: float = 30) -> None:
        """Initialise the cluster if needed, start the server and wait until SELECT 1 works."""
        if self._proc is not None and self._proc.poll() is None:
            return
        deadline = time.monotonic() + timeout
        run_as = self._prepare_dirs()
        self._check_version()
        if not self.data_dir.exists():
            self._initdb(run_as)
        self._stop_foreign_server()
        # A port picked free can be taken before the server binds it: try another.
        for attempt in Retrying(
            stop=stop_after_attempt(1 if self._port_fixed else 3),
            retry=retry_if_exception_type(_PortInUseError),
            before_sleep=lambda _: setattr(self, "port", free_port(HOST)),
            reraise=True,
        ):
            with attempt:
                self._launch(run_as, deadline)
        # A forgotten stop() must not leave a server behind after a normal interpreter exit.
        atexit.register(self.stop)

    def stop(self, timeout: float = 30) -> None:
        """Fast shutdown (pg_ctl stop -m fast), falling back to SIGQUIT/SIGKILL."""
        atexit.unregister(self.stop)
        pid = self._server_pid()
        if pid is not None:
            self._stop_pid(pid, timeout)
        if self._proc is not None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                self._proc.wait(5)  # reap, so no zombie is left behind
            self._proc = None
        if self._short_socket_dir is not None:
            shutil.rmtree(self._short_socket_dir, ignore_errors=True)
            self._short_socket_dir = None
        if self._owns_work_dir:
            shutil.rmtree(self.work_dir, ignore_errors=True)

    def is_running(self) -> bool:
        return self._server_pid() is not None

    def create_database(self, name: str) -> str:
        """Create ``name`` unless it exists; return its URL."""
        self._check_name(name)
        create = (
            "SELECT format('CREATE DATABASE %I', :'db') "
            "WHERE NOT EXISTS (SELECT 1 FROM pg_database WHERE datname = :'db')\n\\gexec\n"
        )
        try:
            self._psql(create, db=name)
        except RuntimeError:
            # Lost a race with a concurrent creator: fine as long as the database is there.
            if not self._psql("SELECT 1 FROM pg_database WHERE datname = :'db'\n", db=name):
                raise
        return self.url(name)

    def drop_database(self, name: str) -> None:
        """Drop ``name`` if it exists, disconnecting its clients."""
        self._check_name(name)
        force = " WITH (FORCE)" if _pg_major(self.bin_dir) >= 13 else ""
        self._psql(f'DROP DATABASE IF EXISTS :"db"{force}\n', db=name)

    # -- internals ----------------------------------------------------------------------------

    def _bin(self, name: str) -> str:
        return str(self.bin_dir / name)

    @property
    def _socket_dir(self) -> Path:
        return self._short_socket_dir or self.socket_dir

    def _run_as(self) -> _User | None:
        if os.geteuid() != 0:
            return None
        with contextlib.suppress(FileNotFoundError):
            st = self.data_dir.stat()
            if st.st_uid != 0:  # an existing cluster keeps its owner
                try:
                    name = pwd.getpwuid(st.st_uid).pw_name
                except KeyError:
                    name = str(st.st_uid)
                return _User(name, st.st_uid, st.st_gid)
        return _system_user()

    def _chown(self, path: Path, user: _User | None, *, recursive: bool = False) -> None:
        if user is None:
            return
        os.chown(path, user.uid, user.gid)
        if recursive:
            for root, dirs, files in os.walk(path):
                for entry in (*dirs, *files):
                    os.chown(Path(root) / entry, user.uid, user.gid, follow_symlinks=False)

    def _prepare_dirs(self) -> _User | None:
        self.work_dir.mkdir(parents=True, exist_ok=True)
        self.socket_dir.mkdir(exist_ok=True)
        self.log_file.touch()
        run_as = self._run_as()
        if run_as is not None:
            self._chown(self.work_dir, run_as)
            self._chown(self.socket_dir, run_as)
            self._chown(self.log_file, run_as)
            if self.data_dir.exists() and self.data_dir.stat().st_uid == 0:
                self._chown(self.data_dir, run_as, recursive=True)  # postgres insists on owning it
            _check_traversable(self.work_dir, run_as)
        if len(str(self.socket_dir / f".s.PGSQL.{self.port}.lock")) > MAX_SOCKET_PATH:
            if self._short_socket_dir is None:
                self._short_socket_dir = Path(tempfile.mkdtemp(prefix="kap-pgs-"))
            self._chown(self._short_socket_dir, run_as)
        return run_as

    def _check_version(self) -> None:
        version_file = self.data_dir / "PG_VERSION"
        if not version_file.exists():
            return
        cluster = int(version_file.read_text().strip().split(".")[0])
        if cluster == _pg_major(self.bin_dir):
            return
        # Prefer the matching Debian binaries over failing: several majors may be installed.
        matching = DEBIAN_PG_ROOT / str(cluster) / "bin"
        if _has_binaries(matching):
            self._bin_dir = matching
            return
        raise RuntimeError(
            f"{self.data_dir} holds a PostgreSQL {cluster} cluster but the binaries in "
            f"{self.bin_dir} are a different major version; delete {self.work_dir} to start afresh"
        )

    def _child_env(self) -> dict[str, str]:
        # PG* variables from the caller's shell (PGHOST, PGDATABASE...) would redirect psql.
        env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
        env.update(LC_ALL="C", PGCLIENTENCODING="UTF8", PGCONNECT_TIMEOUT="3")
        return env

    def _run(
        self, argv: Sequence[str], *, timeout: float, stdin: str | None = None
    ) -> subprocess.CompletedProcess[str]:
        """Run a server tool as the cluster owner (initdb and pg_ctl refuse to run as root)."""
        run_as = self._run_as()
        return subprocess.run(
            argv,
            input=stdin,
            capture_output=True,
            text=True,
            timeout=timeout,
            cwd=self.work_dir,
            env=self._child_env(),
            user=run_as.uid if run_as else None,
            group=run_as.gid if run_as else None,
            extra_groups=[] if run_as else None,
            check=False,
        )

    def _initdb(self, run_as: _User | None) -> None:
        # initdb into a side directory and rename: "data exists" then always means "complete".
        staging = self.work_dir / "data.initdb"
        shutil.rmtree(staging, ignore_errors=True)
        result = self._run(
            [
                self._bin("initdb"),
                "-D",
                str(staging),
                "-U",
                SUPERUSER,
                "--auth=trust",
                "--encoding=UTF8",
                "--no-locale",
                "--no-sync",
            ],
            timeout=120,
        )
        if result.returncode != 0:
            output = result.stdout + result.stderr
            raise RuntimeError(f"initdb failed ({result.returncode}):\n{output}")
        hba = staging / "pg_hba.conf"
        hba.write_text(
            "# kap_local: trust, local socket and 127.0.0.1 only\n"
            "local all all trust\n"
            f"host  all all {HOST}/32 trust\n"
        )
        self._chown(hba, run_as)
        staging.rename(self.data_dir)

    def _stop_foreign_server(self) -> None:
        """Deal with a server left on our data dir by a killed process (e.g. a SIGKILLed pytest)."""
        pid = self._pid_from_file()
        if pid is None:
            return
        if _looks_like_postgres(pid):
            log.warning("stopping PostgreSQL (pid %d) left running on %s", pid, self.data_dir)
            self._stop_pid(pid, 30)
        else:
            (self.data_dir / "postmaster.pid").unlink(missing_ok=True)

    def _stop_pid(self, pid: int, timeout: float) -> None:
        seconds = str(max(1, int(timeout)))
        try:
            result = self._run(
                [
                    self._bin("pg_ctl"),
                    "stop",
                    "-D",
                    str(self.data_dir),
                    "-m",
                    "fast",
                    "-w",
                    "-t",
                    seconds,
                ],
                timeout=timeout + 5,
            )
            stopped = result.returncode == 0 and self._wait_gone(pid, 5)
            reason = (result.stdout + result.stderr).strip()
        except subprocess.TimeoutExpired:
            stopped, reason = False, "timed out"
        if not stopped:
            log.warning("pg_ctl stop failed (%s); killing pid %d", reason, pid)
            self._kill(pid)

    def _launch(self, run_as: _User | None, deadline: float) -> None:
        offset = self.log_file.stat().st_size
        argv = [
            self._bin("postgres"),
            "-D",
            str(self.data_dir),
            "-p",
            str(self.port),
            "-k",
            str(self._socket_dir),
            "-c",
            f"listen_addresses={HOST}",
            # Throw-away data: trade crash safety for speed.
            "-c",
            "fsync=off",
            "-c",
            "synchronous_commit=off",
            "-c",
            "full_page_writes=off",
        ]
        with self.log_file.open("ab") as log_fh:
            # Exec'd directly (no runuser/pg_ctl in between) so the Popen pid *is* the postmaster;
            # own session so a terminal Ctrl-C reaches only us and we shut it down in order.
            self._proc = subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=log_fh,
                stderr=subprocess.STDOUT,
                cwd=self.work_dir,
                env=self._child_env(),
                start_new_session=True,
                user=run_as.uid if run_as else None,
                group=run_as.gid if run_as else None,
                extra_groups=[] if run_as else None,
            )
        while True:
            if self._proc.poll() is not None:
                tail = self._log_tail(offset)
                self._proc = None
                if "Address already in use" in tail:
                    raise _PortInUseError(f"port {self.port} on {HOST} is in use:\n{tail}")
                raise RuntimeError(f"postgres exited during start-up:\n{tail}")
            # Ask over our own unix socket: a stranger on the TCP port cannot answer for us.
            probe = self._run([*self._psql_argv(), "-c", "SELECT 1"], timeout=5)
            if probe.returncode == 0:
                return
            if time.monotonic() > deadline:
                self._kill(self._proc.pid)
                self._proc = None
                raise TimeoutError(f"postgres not ready in time:\n{self._log_tail(offset)}")
            time.sleep(0.05)

    def _psql_argv(self) -> list[str]:
        return [
            self._bin("psql"),
            "-X",
            "-q",
            "-A",
            "-t",
            "-v",
            "ON_ERROR_STOP=1",
            "-h",
            str(self._socket_dir),
            "-p",
            str(self.port),
            "-U",
            self.user,
            "-d",
            "postgres",
        ]

    def _psql(self, sql: str, **variables: str) -> str:
        # SQL goes in on stdin: psql only interpolates :'var' / :"var" there, not in -c.
        argv = self._psql_argv()
        for key, value in variables.items():
            argv += ["-v", f"{key}={value}"]
        result = subprocess.run(
            [*argv, "-f", "-"],
            input=sql,
            capture_output=True,
            text=True,
            timeout=60,
            env=self._child_env(),
            check=False,
        )
        if result.returncode != 0:
            raise RuntimeError(f"psql failed: {result.stderr.strip()}")
        return result.stdout.strip()

    @staticmethod
    def _check_name(name: str) -> None:
        if not name or len(name.encode()) > 63 or "\0" in name:
            raise ValueError(f"invalid database name {name!r}")

    def _pid_from_file(self) -> int | None:
        try:
            first = (self.data_dir / "postmaster.pid").read_text().splitlines()[0]
            pid = int(first)
        except (FileNotFoundError, IndexError, ValueError):
            return None
        return pid if _pid_alive(pid) else None

    def _server_pid(self) -> int | None:
        if self._proc is not None:
            # Ours (or already gone): never stop a server some other instance started meanwhile.
            return self._proc.pid if self._proc.poll() is None else None
        pid = self._pid_from_file()
        return pid if pid is not None and _looks_like_postgres(pid) else None

    def _wait_gone(self, pid: int, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            # Our own child lingers as a zombie (kill(pid, 0) succeeds) until reaped.
            if self._proc is not None and self._proc.pid == pid:
                if self._proc.poll() is not None:
                    return True
            elif not _pid_alive(pid):
                return True
            time.sleep(0.05)
        return False

    def _kill(self, pid: int) -> None:
        # SIGQUIT is PostgreSQL's immediate shutdown (it takes the backends down too).
        for sig in (signal.SIGQUIT, signal.SIGKILL):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, sig)
            if self._wait_gone(pid, 5):
                return

    def _log_tail(self, offset: int, lines: int = 30) -> str:
        with self.log_file.open("rb") as fh:
            fh.seek(offset)
            text = fh.read().decode(errors="replace")
        return "\n".join(text.splitlines()[-lines:])


# -- CLI ----------------------------------------------------------------------------------------


def _serve(args: argparse.Namespace) -> int:
    databases = [name.strip() for name in args.databases.split(",") if name.strip()]
    pg = LocalPostgres(Path(args.work_dir), args.port)
    stop_requested: list[int] = []

    def request_stop(signum: int, _frame: FrameType | None) -> None:
        # Only record it: raising here could abort the shutdown half-way.
        stop_requested.append(signum)

    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, request_stop)
    started = time.monotonic()
    pg.start(timeout=args.timeout)
    try:
        print(
            f"PostgreSQL ready on {HOST}:{pg.port} in {time.monotonic() - started:.1f}s "
            f"(data {pg.data_dir}, log {pg.log_file})",
            file=sys.stderr,
        )
        print(f"postgres={pg.url()}")
        for name in databases:
            print(f"{name}={pg.create_database(name)}")
        sys.stdout.flush()
        while not stop_requested and pg.is_running():
            time.sleep(0.2)
    finally:
        # A `stop` from another shell ends the server with status 0; anything else is a crash.
        exit_code = pg._proc.poll() if pg._proc is not None else None
        pg.stop()
    if not stop_requested and exit_code:
        print(f"postgres exited with status {exit_code}; see {pg.log_file}", file=sys.stderr)
        return 1
    print("PostgreSQL stopped", file=sys.stderr)
    return 0


def _stop(args: argparse.Namespace) -> int:
    pg = LocalPostgres(Path(args.work_dir))
    if not pg.is_running():
        print(f"no PostgreSQL running on {pg.data_dir}", file=sys.stderr)
        return 0
    pg.stop()
    print("PostgreSQL stopped", file=sys.stderr)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m kap_local.postgres",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="command", required=True)
    start = sub.add_parser("start", help="run PostgreSQL in the foreground until SIGINT/SIGTERM")
    start.add_argument("--work-dir", default="var/postgres")
    start.add_argument("--port", type=int, default=None, help="default: a free port")
    start.add_argument("--databases", default="", help="comma-separated databases to create")
    start.add_argument("--timeout", type=float, default=30, help="start-up timeout (seconds)")
    start.set_defaults(func=_serve)
    stop = sub.add_parser("stop", help="stop the server running on a work dir")
    stop.add_argument("--work-dir", default="var/postgres")
    stop.set_defaults(func=_stop)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        code: int = args.func(args)
    except (RuntimeError, TimeoutError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return code


if __name__ == "__main__":
    sys.exit(main())
