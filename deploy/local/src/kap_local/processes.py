"""What the local servers (Kafka, PostgreSQL) and the platform supervisor share:
free TCP ports and the `with server:` lifecycle."""

from __future__ import annotations

import abc
import contextlib
import socket
from typing import Self

HOST = "127.0.0.1"


def free_ports(n: int, host: str = HOST) -> list[int]:
    """n distinct free TCP ports on `host` (racy by nature: the servers retry a taken one).
    All are held open together, so none is handed out twice."""
    with contextlib.ExitStack() as held:
        ports = []
        for _ in range(n):
            sock = held.enter_context(socket.socket(socket.AF_INET, socket.SOCK_STREAM))
            sock.bind((host, 0))
            ports.append(int(sock.getsockname()[1]))
        return ports


def free_port(host: str = HOST) -> int:
    """One free TCP port on `host`."""
    return free_ports(1, host)[0]


class LocalServer(abc.ABC):
    """A server process this library starts and stops: `with server:` starts it and
    stops it on the way out, whatever happened inside."""

    @abc.abstractmethod
    def start(self, timeout: float = 30) -> object:
        """Launch the server and wait until it answers (each server has its own default)."""

    @abc.abstractmethod
    def stop(self, timeout: float = 30) -> None:
        """Stop the server (politely first); a no-op when it is not running."""

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()
