"""The throw-away PostgreSQL launcher: real server binaries, real asyncpg connections."""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import pytest

from kap_local.postgres import LocalPostgres, find_pg_bin


@pytest.fixture
def work_dir() -> Iterator[Path]:
    # Not pytest's tmp_path: as root the server runs as an unprivileged user, who cannot
    # traverse the 0700 /tmp/pytest-of-root.
    path = Path(tempfile.mkdtemp(prefix="kap-pg-test-"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


async def _query(url: str) -> tuple[str, int]:
    conn = await asyncpg.connect(url, timeout=10)
    try:
        row = await conn.fetchrow("SELECT current_database() AS db, 40 + 2 AS answer")
        assert row is not None
        return row["db"], row["answer"]
    finally:
        await conn.close()


def test_find_pg_bin_has_server_binaries() -> None:
    bin_dir = find_pg_bin()
    for name in ("initdb", "pg_ctl", "postgres", "psql"):
        assert (bin_dir / name).exists()


async def test_databases_queries_and_reuse(work_dir: Path) -> None:
    pg = LocalPostgres(work_dir)
    await asyncio.to_thread(pg.start)
    try:
        assert pg.is_running()
        urls = {name: pg.create_database(name) for name in ("intake", "scheduling")}
        assert pg.create_database("intake") == urls["intake"]  # idempotent
        assert urls["intake"] == f"postgresql://postgres@127.0.0.1:{pg.port}/intake"
        for name, url in urls.items():
            assert await _query(url) == (name, 42)
        conn = await asyncpg.connect(urls["intake"])
        try:
            await conn.execute("CREATE TABLE kept (id int); INSERT INTO kept VALUES (7)")
        finally:
            await conn.close()
    finally:
        await asyncio.to_thread(pg.stop)
    assert not pg.is_running()
    assert await asyncio.to_thread(work_dir.exists)  # an explicit work dir is kept for reuse

    # Same work dir, new port: the cluster (and its data) is reused, not re-initialised.
    again = LocalPostgres(work_dir)
    await asyncio.to_thread(again.start)
    try:
        conn = await asyncpg.connect(again.url("intake"))
        try:
            assert await conn.fetchval("SELECT id FROM kept") == 7
        finally:
            await conn.close()
        again.drop_database("scheduling")
        again.drop_database("scheduling")  # idempotent
        with pytest.raises(asyncpg.InvalidCatalogNameError):
            await asyncpg.connect(again.url("scheduling"))
    finally:
        await asyncio.to_thread(again.stop)


async def test_context_manager_temp_dir_is_removed() -> None:
    pg = LocalPostgres()
    with pg:
        assert await _query(pg.create_database("monitoring")) == ("monitoring", 42)
    assert not await asyncio.to_thread(pg.work_dir.exists)


async def test_takes_over_server_left_running(work_dir: Path) -> None:
    # Simulates a SIGKILLed test run that left its server on the work dir.
    orphan = LocalPostgres(work_dir)
    orphan.start()
    successor = LocalPostgres(work_dir)
    await asyncio.to_thread(successor.start)
    try:
        assert await _query(successor.url()) == ("postgres", 42)
        orphan.stop()  # must not stop the successor's server
        assert successor.is_running()
    finally:
        successor.stop()


def test_cli_start_runs_until_sigterm(work_dir: Path) -> None:
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "kap_local.postgres",
            "start",
            "--work-dir",
            str(work_dir),
            "--databases",
            "intake,notifications",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        lines = [proc.stdout.readline().strip() for _ in range(3)]
        urls = dict(line.split("=", 1) for line in lines)
        assert set(urls) == {"postgres", "intake", "notifications"}
        assert asyncio.run(_query(urls["notifications"])) == ("notifications", 42)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0, proc.stderr.read() if proc.stderr else ""
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert not LocalPostgres(work_dir).is_running()
    assert not (work_dir / "data" / "postmaster.pid").exists()


def test_cli_stop(work_dir: Path) -> None:
    pg = LocalPostgres(work_dir)
    pg.start()
    try:
        result = subprocess.run(
            [sys.executable, "-m", "kap_local.postgres", "stop", "--work-dir", str(work_dir)],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert result.returncode == 0, result.stderr
        assert not LocalPostgres(work_dir).is_running()
    finally:
        pg.stop()


@pytest.mark.skipif(os.geteuid() != 0, reason="the unprivileged-user path only applies to root")
def test_root_runs_server_as_unprivileged_user(work_dir: Path) -> None:
    with LocalPostgres(work_dir) as pg:
        assert (pg.data_dir.stat().st_uid) != 0
        assert pg._proc is not None
        assert Path(f"/proc/{pg._proc.pid}").stat().st_uid != 0
