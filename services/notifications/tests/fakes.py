"""Real local servers standing in for the providers: an SMS webhook (a threaded
`http.server`) and an SMTP server (aiosmtpd's Controller), both on 127.0.0.1
free ports. Tests assert what they actually received."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from email import message_from_bytes
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from aiosmtpd.controller import Controller

from kap_local.platform import free_port

__all__ = ["FakeSmsProvider", "FakeSmtpServer", "free_port"]


@dataclass
class SmsRequest:
    path: str
    headers: dict[str, str]
    payload: dict[str, Any]


@dataclass
class FakeSmsProvider:
    """An SMS provider's webhook: records every POST, answers with the next
    scripted status (200 when the script is empty), optionally slowly."""

    requests: list[SmsRequest] = field(default_factory=list)
    script: list[int] = field(default_factory=list)
    delay_seconds: float = 0.0

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        provider = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("content-length", "0"))
                body = json.loads(self.rfile.read(length) or b"{}")
                with provider._lock:
                    provider.requests.append(
                        SmsRequest(self.path, {k.lower(): v for k, v in self.headers.items()}, body)
                    )
                    status = provider.script.pop(0) if provider.script else 200
                    delay = provider.delay_seconds
                if delay:
                    time.sleep(delay)
                reply = json.dumps({"accepted": status < 300}).encode()
                self.send_response(status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(reply)))
                self.end_headers()
                self.wfile.write(reply)

            def log_message(self, format: str, *args: Any) -> None:
                return None

        self.server = ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host!s}:{port}/sms"

    def reset(self) -> None:
        with self._lock:
            self.requests.clear()
            self.script.clear()
            self.delay_seconds = 0.0

    @property
    def delivered(self) -> dict[str, dict[str, Any]]:
        """What a provider that deduplicates on `idempotency_key` delivered."""
        out: dict[str, dict[str, Any]] = {}
        for request in self.requests:
            out.setdefault(request.payload["idempotency_key"], request.payload)
        return out

    def wait_for(
        self, predicate: Callable[[list[SmsRequest]], bool], timeout: float = 10.0
    ) -> None:
        deadline = time.monotonic() + timeout
        while not predicate(list(self.requests)):
            if time.monotonic() > deadline:
                raise AssertionError(f"SMS provider got {self.requests}")
            time.sleep(0.05)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@dataclass
class ReceivedMail:
    mail_from: str
    rcpt_tos: list[str]
    message: Message


class _MailHandler:
    def __init__(self) -> None:
        self.received: list[ReceivedMail] = []
        self.refuse: set[str] = set()
        self.temporary_failures = 0

    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, rcpt_options: Any
    ) -> str:
        if address in self.refuse:
            return f"550 5.1.1 <{address}>: Recipient address rejected"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        if self.temporary_failures > 0:
            self.temporary_failures -= 1
            return "451 4.3.0 Try again later"
        self.received.append(
            ReceivedMail(
                envelope.mail_from, list(envelope.rcpt_tos), message_from_bytes(envelope.content)
            )
        )
        return "250 Message accepted for delivery"


class FakeSmtpServer:
    """A real SMTP server (aiosmtpd) on a free local port, without TLS."""

    def __init__(self) -> None:
        self.handler = _MailHandler()
        self.port = free_port()
        self.controller = Controller(self.handler, hostname="127.0.0.1", port=self.port)
        self.controller.start()

    @property
    def received(self) -> list[ReceivedMail]:
        return self.handler.received

    def reset(self) -> None:
        self.handler.received.clear()
        self.handler.refuse.clear()
        self.handler.temporary_failures = 0

    def close(self) -> None:
        self.controller.stop()
