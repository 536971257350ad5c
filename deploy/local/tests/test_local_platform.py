"""Platform.start survives the free-port race: a port taken between `free_port()` and
the service's bind is picked afresh; a start that fails stops what it started (real
service processes, a real broker)."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from kap_local import platform as platform_module
from kap_local.platform import SERVICES, Platform, PortTaken


@pytest.fixture
def taken_port() -> Iterator[int]:
    """A port something else listens on, as when another process wins the race."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        yield int(holder.getsockname()[1])


def _records_first_gets(port: int, monkeypatch: pytest.MonkeyPatch) -> None:
    """The platform's first pick gives records `port`; every later pick is a free one."""
    real_free_port = platform_module.free_port
    first_pick = {name: port if name == "records" else real_free_port() for name in SERVICES}
    picks = iter(first_pick.values())
    monkeypatch.setattr(platform_module, "free_port", lambda: next(picks, None) or real_free_port())


def test_a_port_taken_before_the_bind_is_picked_afresh(
    kafka_bootstrap: str, tmp_path: Path, taken_port: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    _records_first_gets(taken_port, monkeypatch)
    running = Platform(bootstrap=kafka_bootstrap, work_dir=tmp_path, jwt_secret="s" * 32)
    assert running["records"].port == taken_port
    try:
        running.start(["records"], timeout=60)
        assert running["records"].port != taken_port
        assert httpx.get(f"{running.url('records')}/readyz", timeout=5).status_code == 200
        assert "address already in use" in running["records"].log_path.read_text()
    finally:
        running.stop()


def test_ports_the_caller_chose_are_never_moved(
    kafka_bootstrap: str, tmp_path: Path, taken_port: int
) -> None:
    ports = {name: taken_port if name == "records" else 0 for name in SERVICES}
    running = Platform(
        bootstrap=kafka_bootstrap, work_dir=tmp_path, jwt_secret="s" * 32, ports=ports
    )
    try:
        with pytest.raises(PortTaken, match="address already in use"):
            running.start(["records"], timeout=60)
        assert running["records"].port == taken_port
    finally:
        running.stop()


def test_a_start_that_fails_leaves_no_service_running(kafka_bootstrap: str, tmp_path: Path) -> None:
    running = Platform(bootstrap=kafka_bootstrap, work_dir=tmp_path, jwt_secret="s" * 32)
    try:
        with pytest.raises(TimeoutError, match="not ready"):
            running.start(["intake", "records"], timeout=0.001)  # no service is that quick
        alive = [
            name
            for name, service in running.services.items()
            if service.proc is not None and service.proc.poll() is None
        ]
        assert alive == []
    finally:
        running.stop()
