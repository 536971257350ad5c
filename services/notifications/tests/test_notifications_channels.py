"""The email and SMS senders against real local servers: an SMTP server
(aiosmtpd) and an HTTP webhook (http.server), asserting what they received."""

from __future__ import annotations

import asyncio
import smtplib

import pytest

from kap_notifications.adapters.channels import (
    SMS_MAX_CHARS,
    DeliveryError,
    NotConfigured,
    Outgoing,
    sms_text,
)
from kap_notifications.adapters.channels.email import SmtpConfig, SmtpSender, message_id
from kap_notifications.adapters.channels.sms import SmsConfig, WebhookSmsSender
from kap_shared.events.enums import Channel

from .fakes import FakeSmsProvider, FakeSmtpServer, free_port

MESSAGE = Outgoing(
    notification_id="6f1c1a3e-0000-4000-8000-000000000001",
    to="ada@clinic.example",
    subject="CRITICAL vitals alert",
    text="Session sess-1, patient pt-1: bp_systolic 186 (threshold 180, rule KET-MON-BP).",
    priority="stat",
)


def _smtp(server: FakeSmtpServer, **overrides: object) -> SmtpSender:
    config = SmtpConfig(
        host="127.0.0.1",
        port=server.port,
        sender="alerts@kap.example",
        starttls=False,
        timeout_seconds=2.0,
    )
    return SmtpSender(SmtpConfig(**{**config.__dict__, **overrides}))


# -- email -------------------------------------------------------------------------------------


async def test_email_reaches_the_smtp_server_with_a_message_id_from_the_notification(
    smtp: FakeSmtpServer,
) -> None:
    await _smtp(smtp).send(MESSAGE)

    [mail] = smtp.received
    assert mail.mail_from == "alerts@kap.example"
    assert mail.rcpt_tos == ["ada@clinic.example"]
    assert mail.message["Message-ID"] == f"<{MESSAGE.notification_id}@kap.example>"
    assert mail.message["X-KAP-Notification-Id"] == MESSAGE.notification_id
    assert mail.message["Subject"] == "[KAP stat] CRITICAL vitals alert"
    assert mail.message["Importance"] == "high"
    assert mail.message["Auto-Submitted"] == "auto-generated"
    body = mail.message.get_payload(decode=True)
    assert isinstance(body, bytes)
    assert b"bp_systolic 186" in body
    assert MESSAGE.notification_id.encode() in body


async def test_email_sent_twice_is_the_same_message(smtp: FakeSmtpServer) -> None:
    sender = _smtp(smtp)
    await sender.send(MESSAGE)
    await sender.send(MESSAGE)
    assert len({m.message["Message-ID"] for m in smtp.received}) == 1


def test_message_id_domain_comes_from_the_sender_address() -> None:
    assert message_id("n-1", "kap@mail.clinic.example") == "<n-1@mail.clinic.example>"
    assert message_id("n-1", "kap") == "<n-1@kap>"


async def test_refused_recipient_fails_permanently_without_echoing_the_address(
    smtp: FakeSmtpServer,
) -> None:
    smtp.handler.refuse.add("ada@clinic.example")
    with pytest.raises(DeliveryError) as caught:
        await _smtp(smtp).send(MESSAGE)
    assert caught.value.code == "smtp_recipient_refused_550"
    assert caught.value.permanent is True
    assert "ada" not in str(caught.value)


async def test_temporary_smtp_failure_is_retryable(smtp: FakeSmtpServer) -> None:
    smtp.handler.temporary_failures = 1
    with pytest.raises(DeliveryError) as caught:
        await _smtp(smtp).send(MESSAGE)
    assert (caught.value.code, caught.value.permanent) == ("smtp_451", False)


async def test_unreachable_smtp_server_is_retryable() -> None:
    sender = SmtpSender(SmtpConfig(host="127.0.0.1", port=free_port(), starttls=False))
    with pytest.raises(DeliveryError) as caught:
        await sender.send(MESSAGE)
    assert (caught.value.code, caught.value.permanent) == ("smtp_unavailable", False)


async def test_starttls_required_but_not_offered_is_reported(smtp: FakeSmtpServer) -> None:
    with pytest.raises(DeliveryError) as caught:
        await _smtp(smtp, starttls=True).send(MESSAGE)
    assert caught.value.code == "smtp_starttls_not_supported"
    assert smtp.received == []


def test_smtp_errors_never_carry_the_address() -> None:
    error = smtplib.SMTPRecipientsRefused({"ada@clinic.example": (550, b"no such user")})
    assert "ada" in str(error)  # which is why the sender never passes it on


# -- SMS -----------------------------------------------------------------------------------------


def _sms(provider: FakeSmsProvider, token: str | None = "tok-123") -> WebhookSmsSender:  # noqa: S107
    return WebhookSmsSender(SmsConfig(url=provider.url, token=token, timeout_seconds=1.0))


async def test_sms_webhook_gets_to_body_and_idempotency_key(sms: FakeSmsProvider) -> None:
    sender = _sms(sms)
    message = Outgoing(MESSAGE.notification_id, "+15550100200", "Alert", "Body 1.", "stat")
    try:
        await sender.send(message)
    finally:
        await sender.close()

    [request] = sms.requests
    assert request.path == "/sms"
    assert request.payload == {
        "to": "+15550100200",
        "body": "Alert: Body 1.",
        "idempotency_key": MESSAGE.notification_id,
    }
    assert request.headers["authorization"] == "Bearer tok-123"
    assert request.headers["idempotency-key"] == MESSAGE.notification_id
    assert request.headers["content-type"] == "application/json"


@pytest.mark.parametrize(
    ("status", "permanent"),
    [(500, False), (503, False), (429, False), (408, False), (400, True), (401, True), (422, True)],
)
async def test_sms_provider_status_decides_retry_or_failure(
    sms: FakeSmsProvider, status: int, permanent: bool
) -> None:
    sms.script.append(status)
    sender = _sms(sms, token=None)
    try:
        with pytest.raises(DeliveryError) as caught:
            await sender.send(MESSAGE)
    finally:
        await sender.close()
    assert (caught.value.code, caught.value.permanent) == (f"sms_http_{status}", permanent)
    assert "authorization" not in sms.requests[0].headers


async def test_unreachable_or_slow_sms_provider_is_retryable(sms: FakeSmsProvider) -> None:
    down = WebhookSmsSender(SmsConfig(url=f"http://127.0.0.1:{free_port()}/sms"))
    with pytest.raises(DeliveryError) as caught:
        await down.send(MESSAGE)
    assert (caught.value.code, caught.value.permanent) == ("sms_unavailable", False)
    await down.close()

    sms.delay_seconds = 1.0
    slow = WebhookSmsSender(SmsConfig(url=sms.url, timeout_seconds=0.2))
    with pytest.raises(DeliveryError) as caught:
        await slow.send(MESSAGE)
    assert (caught.value.code, caught.value.permanent) == ("sms_timeout", False)
    await slow.close()


def test_sms_text_is_bounded() -> None:
    assert sms_text("T", "short") == "T: short"
    long = sms_text("T", "x" * 1000)
    assert len(long) == SMS_MAX_CHARS
    assert long.endswith("…")


async def test_unconfigured_channel_fails_permanently() -> None:
    sender = NotConfigured(Channel.SMS)
    with pytest.raises(DeliveryError) as caught:
        await sender.send(MESSAGE)
    assert (caught.value.code, caught.value.permanent) == ("channel_not_configured", True)
    await asyncio.sleep(0)
