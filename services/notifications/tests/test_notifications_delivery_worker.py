"""The delivery worker: pending email/SMS rows sent to real local servers,
retried with backoff, failed after bounded attempts, one channel never
holding up another, and a kill mid-delivery losing and duplicating nothing."""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from datetime import timedelta
from typing import Any

from kap_notifications.adapters.channels import NotConfigured, Outgoing, Sender
from kap_notifications.handlers.delivery import DeliveryWorker
from kap_shared.events.enums import Channel
from kap_shared.testing import rows

from . import factories as f
from .conftest import Harness, ts

CONTACT: dict[str, Any] = {"email": "ada@clinic.example", "phone": "+15550100200"}


def _critical_alert(h: Harness) -> str:
    h.put_recipient("rx-ada", **CONTACT, channels={"stat": ["email"], "routine": []})
    h.deliver(f.plan_created())
    h.deliver(f.session_scheduled())
    event = f.vitals_alert()
    h.deliver(event)
    return str(event.event_id)


def _row(h: Harness, channel: str) -> dict[str, object]:
    [row] = h.notifications(f"recipient_id = 'rx-ada' AND channel = '{channel}'")
    return row


def test_pending_sms_and_email_are_delivered_and_announced(h: Harness) -> None:
    source = _critical_alert(h)

    assert h.deliver_due() == 2

    sms, email = _row(h, "sms"), _row(h, "email")
    assert (sms["status"], sms["attempts"], sms["last_error"]) == ("delivered", 1, None)
    assert (email["status"], email["attempts"]) == ("delivered", 1)
    [request] = h.sms.requests
    assert request.payload["to"] == "+15550100200"
    assert request.payload["idempotency_key"] == sms["notification_id"]
    assert request.payload["body"].startswith("CRITICAL vitals alert: Session sess-1")
    assert request.headers["authorization"] == "Bearer sms-provider-token"
    [mail] = h.smtp.received
    assert mail.rcpt_tos == ["ada@clinic.example"]
    assert mail.message["Message-ID"] == f"<{email['notification_id']}@kap.example>"
    sent = {
        e["data"]["channel"]: e
        for e in h.outbox("NotificationSent")
        if e["data"]["recipient_id"] == "rx-ada" and e["data"]["source_event_id"] == source
    }
    assert set(sent) == {"in_app", "sms", "email"}
    assert sent["sms"]["data"]["notification_id"] == sms["notification_id"]
    assert sent["sms"]["data"]["priority"] == "stat"
    assert sent["sms"]["causation_id"] == source
    # Delivered rows are not sent again.
    assert h.deliver_due() == 0
    assert len(h.sms.requests) == 1


def test_failed_delivery_is_retried_with_backoff_then_fails_with_notification_failed(
    h: Harness,
) -> None:
    _critical_alert(h)
    h.sms.script.extend([503, 503, 503])  # max 3 attempts, backoff 10 s doubling

    assert h.deliver_due(Channel.SMS) == 1
    first = _row(h, "sms")
    assert (first["status"], first["attempts"], first["last_error"]) == (
        "pending",
        1,
        "sms_http_503",
    )
    retry_at = ts(first["next_attempt_at"])

    h.clock.set(retry_at - timedelta(seconds=1))
    assert h.deliver_due(Channel.SMS) == 0  # not before the backoff
    h.clock.set(retry_at)
    assert h.deliver_due(Channel.SMS) == 1
    second = _row(h, "sms")
    assert second["attempts"] == 2
    assert ts(second["next_attempt_at"]) - retry_at >= timedelta(seconds=20)  # doubled

    h.clock.set(ts(second["next_attempt_at"]))
    assert h.deliver_due(Channel.SMS) == 1
    final = _row(h, "sms")
    assert (final["status"], final["attempts"], final["last_error"]) == (
        "failed",
        3,
        "sms_http_503",
    )
    [failed] = h.outbox("NotificationFailed")
    assert failed["data"] == {
        "notification_id": final["notification_id"],
        "source_event_id": final["source_event_id"],
        "recipient_id": "rx-ada",
        "channel": "sms",
        "error": "sms_http_503",
    }
    assert len(h.sms.requests) == 3
    h.clock.advance(3600)
    assert h.deliver_due(Channel.SMS) == 0  # bounded: never again


def test_a_retry_that_succeeds_emits_notification_sent_only(h: Harness) -> None:
    _critical_alert(h)
    h.sms.script.append(502)
    h.deliver_due(Channel.SMS)
    h.clock.advance(10)
    h.deliver_due(Channel.SMS)
    assert _row(h, "sms")["status"] == "delivered"
    assert h.outbox("NotificationFailed") == []
    assert len(h.sms.delivered) == 1


def test_permanent_error_fails_at_once(h: Harness) -> None:
    _critical_alert(h)
    h.sms.script.append(400)
    h.deliver_due(Channel.SMS)
    row = _row(h, "sms")
    assert (row["status"], row["attempts"], row["last_error"]) == ("failed", 1, "sms_http_400")
    assert [e["data"]["error"] for e in h.outbox("NotificationFailed")] == ["sms_http_400"]


def test_failing_email_does_not_block_sms(h: Harness) -> None:
    _critical_alert(h)
    h.smtp.handler.refuse.add("ada@clinic.example")

    h.deliver_due()

    assert _row(h, "sms")["status"] == "delivered"
    email = _row(h, "email")
    assert (email["status"], email["last_error"]) == ("failed", "smtp_recipient_refused_550")
    [failed] = h.outbox("NotificationFailed")
    assert "ada@" not in str(failed)  # the address never reaches an event


def test_a_hanging_sms_provider_does_not_hold_up_email(h: Harness) -> None:
    _critical_alert(h)
    h.sms.delay_seconds = 1.5  # the SMS sender times out after 2 s
    email_done = threading.Event()

    def watch_email() -> None:
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and not h.smtp.received:
            time.sleep(0.01)
        email_done.set()

    started = time.monotonic()
    watcher = threading.Thread(target=watch_email)
    watcher.start()
    h.deliver_due()  # both channels run concurrently
    watcher.join()

    assert h.smtp.received, "email was not delivered"
    assert _row(h, "sms")["status"] == "delivered"
    assert time.monotonic() - started >= 1.5


def test_unconfigured_channel_fails_visibly(h: Harness) -> None:
    _critical_alert(h)
    h.worker.senders[Channel.SMS] = NotConfigured(Channel.SMS)
    h.deliver_due(Channel.SMS)
    assert _row(h, "sms")["last_error"] == "channel_not_configured"
    assert [e["data"]["error"] for e in h.outbox("NotificationFailed")] == [
        "channel_not_configured"
    ]


def test_recipient_who_removed_their_phone_fails_the_pending_sms(h: Harness) -> None:
    _critical_alert(h)
    h.put_recipient("rx-ada", email="ada@clinic.example")  # no phone any more
    h.deliver_due(Channel.SMS)
    assert (_row(h, "sms")["status"], _row(h, "sms")["last_error"]) == (
        "failed",
        "no_contact_point",
    )
    assert h.sms.requests == []


def test_deferred_routine_email_goes_out_when_quiet_hours_end(h: Harness) -> None:
    quiet = {"start": "00:00", "end": "23:00", "timezone": "UTC"}
    h.put_recipient("th-ben", role="therapist", email="ben@clinic.example", quiet_hours=quiet)
    h.deliver(f.plan_created())
    h.deliver(f.session_scheduled())  # routine email, deferred to 23:00 UTC

    assert h.deliver_due(Channel.EMAIL) == 0
    assert h.smtp.received == []
    h.clock.set(h.clock.now.replace(hour=23, minute=0, second=0, microsecond=0))
    assert h.deliver_due(Channel.EMAIL) == 1
    assert [m.rcpt_tos for m in h.smtp.received] == [["ben@clinic.example"]]


# -- crash in the middle of a delivery --------------------------------------------------------


class DiesAfterSending:
    """Hands the message to the real provider; then the process dies (the
    delivery task is cancelled before it can record anything, like SIGKILL)."""

    channel = Channel.SMS

    def __init__(self, real: Sender) -> None:
        self.real = real
        self.sent = asyncio.Event()

    async def send(self, message: Outgoing) -> None:
        await self.real.send(message)
        self.sent.set()
        await asyncio.Event().wait()  # never returns: the process is gone

    async def close(self) -> None:
        return None


def test_kill_mid_delivery_neither_loses_nor_duplicates(h: Harness) -> None:
    source = _critical_alert(h)
    real_sms = h.worker.senders[Channel.SMS]
    dying = DiesAfterSending(real_sms)
    h.worker.senders[Channel.SMS] = dying

    async def kill_mid_delivery() -> None:
        delivery = asyncio.create_task(h.worker.deliver_due(Channel.SMS))
        await dying.sent.wait()
        delivery.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await delivery

    h.call(kill_mid_delivery)

    # The provider got it; the service never recorded it: the row is pending, leased.
    assert len(h.sms.requests) == 1
    killed = _row(h, "sms")
    assert (killed["status"], killed["attempts"]) == ("pending", 1)

    # A restarted process (a fresh worker on the same database) ...
    restarted = DeliveryWorker(
        h.runtime.sessions,
        {Channel.SMS: real_sms},
        h.worker.policy,
        clock=h.clock,
        lease_seconds=30.0,
    )
    # ... leaves it alone while the dead process's lease runs ...
    assert h.call(restarted.deliver_due, Channel.SMS) == 0
    # ... and sends it again, with the same idempotency key, once the lease expired.
    h.clock.advance(30)
    assert h.call(restarted.deliver_due, Channel.SMS) == 1

    row = _row(h, "sms")
    assert (row["status"], row["attempts"]) == ("delivered", 2)
    keys = [r.payload["idempotency_key"] for r in h.sms.requests]
    assert keys == [row["notification_id"], row["notification_id"]]  # at-least-once
    assert list(h.sms.delivered) == [row["notification_id"]]  # the provider delivers once
    assert rows(
        h.db,
        "SELECT count(*) FROM notifications WHERE channel = 'sms' AND recipient_id = 'rx-ada'",
    ) == [(1,)]
    sent = [
        e
        for e in h.outbox("NotificationSent")
        if e["data"]["channel"] == "sms" and e["data"]["source_event_id"] == source
    ]
    assert len(sent) == 1


def test_two_workers_racing_for_a_row_send_it_once(h: Harness) -> None:
    _critical_alert(h)
    other = DeliveryWorker(
        h.runtime.sessions, dict(h.worker.senders), h.worker.policy, clock=h.clock
    )

    async def race() -> list[int]:
        return list(
            await asyncio.gather(h.worker.deliver_due(Channel.SMS), other.deliver_due(Channel.SMS))
        )

    assert sorted(h.call(race)) == [0, 1]
    assert len(h.sms.requests) == 1


def test_a_delivery_that_keeps_dying_mid_send_is_failed_not_retried_forever(h: Harness) -> None:
    _critical_alert(h)
    dying = DiesAfterSending(h.worker.senders[Channel.SMS])
    h.worker.senders[Channel.SMS] = dying

    async def crash_once() -> None:
        dying.sent.clear()
        delivery = asyncio.create_task(h.worker.deliver_due(Channel.SMS))
        await dying.sent.wait()
        delivery.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await delivery

    for _ in range(3):  # max attempts: every one of them crashes
        h.call(crash_once)
        h.clock.advance(30)
    assert h.deliver_due(Channel.SMS) == 1
    row = _row(h, "sms")
    assert (row["status"], row["attempts"], row["last_error"]) == (
        "failed",
        4,
        "attempts_exhausted",
    )
    assert len(h.sms.requests) == 3
