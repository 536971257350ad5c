"""Delivery channels for email and SMS (in-app is the notifications table).

A sender takes an `Outgoing` message and either returns (the provider accepted
it) or raises `DeliveryError`. Errors carry a short *code* (e.g. `sms_http_503`,
`smtp_550`, `smtp_unavailable`) and never the provider's text, which may echo
the recipient's address or number: codes are what reach logs, the database and
NotificationFailed events.

Delivery is **at-least-once**: a crash after the provider accepted a message
but before the service recorded it sends it again after restart, with the same
idempotency key (the notification id): the SMS webhook gets it as
`idempotency_key`, and the email as its `Message-ID`, so providers and mail
clients can drop the repeat.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from kap_shared.events.enums import Channel


@dataclass(frozen=True)
class Outgoing:
    notification_id: str  # also the idempotency key
    to: str  # phone (E.164) or email address: never logged
    subject: str
    text: str
    priority: str


class DeliveryError(Exception):
    def __init__(self, code: str, *, permanent: bool = False) -> None:
        super().__init__(code)
        self.code = code
        self.permanent = permanent


class Sender(Protocol):
    channel: Channel

    async def send(self, message: Outgoing) -> None: ...

    async def close(self) -> None: ...


class NotConfigured:
    """A channel without configuration: every delivery fails at once, visibly
    (NotificationFailed `channel_not_configured`), instead of silently never paging."""

    def __init__(self, channel: Channel) -> None:
        self.channel = channel

    async def send(self, message: Outgoing) -> None:
        raise DeliveryError("channel_not_configured", permanent=True)

    async def close(self) -> None:
        return None


SMS_MAX_CHARS = 480  # three concatenated segments at most


def sms_text(subject: str, text: str) -> str:
    body = f"{subject}: {text}"
    return body if len(body) <= SMS_MAX_CHARS else body[: SMS_MAX_CHARS - 1] + "…"
