"""Email over SMTP (SMTP_HOST, SMTP_PORT, SMTP_USERNAME, SMTP_PASSWORD, SMTP_FROM,
SMTP_STARTTLS, SMTP_SSL). Python's smtplib, run in a worker thread.

The `Message-ID` is derived from the notification id, so a message sent twice
(at-least-once after a crash) is the same message to every mail system.
"""

from __future__ import annotations

import asyncio
import smtplib
import ssl
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import formatdate

from kap_shared.events.enums import Channel

from . import DeliveryError, Outgoing


@dataclass(frozen=True)
class SmtpConfig:
    host: str
    port: int = 587
    username: str | None = None
    password: str | None = None
    sender: str = "kap-notifications@localhost"
    starttls: bool = True
    implicit_tls: bool = False
    timeout_seconds: float = 10.0


def message_id(notification_id: str, sender: str) -> str:
    domain = sender.rpartition("@")[2] or "kap.invalid"
    return f"<{notification_id}@{domain}>"


def build_email(config: SmtpConfig, message: Outgoing) -> EmailMessage:
    mail = EmailMessage()
    mail["From"] = config.sender
    mail["To"] = message.to
    mail["Subject"] = f"[KAP {message.priority}] {message.subject}"
    mail["Message-ID"] = message_id(message.notification_id, config.sender)
    mail["Date"] = formatdate(usegmt=True)
    mail["Auto-Submitted"] = "auto-generated"
    mail["X-KAP-Notification-Id"] = message.notification_id
    if message.priority in ("urgent", "asap", "stat"):
        mail["Importance"] = "high"
    mail.set_content(
        f"{message.text}\n\n"
        f"Notification {message.notification_id}. Sent by the KAP care-coordination "
        "platform; do not reply.\n"
    )
    return mail


class SmtpSender:
    channel = Channel.EMAIL

    def __init__(self, config: SmtpConfig) -> None:
        self.config = config

    async def send(self, message: Outgoing) -> None:
        await asyncio.to_thread(self._send, build_email(self.config, message))

    async def close(self) -> None:
        return None

    def _send(self, mail: EmailMessage) -> None:
        c = self.config
        try:
            smtp: smtplib.SMTP
            if c.implicit_tls:
                smtp = smtplib.SMTP_SSL(
                    c.host, c.port, timeout=c.timeout_seconds, context=ssl.create_default_context()
                )
            else:
                smtp = smtplib.SMTP(c.host, c.port, timeout=c.timeout_seconds)
            with smtp:
                if c.starttls and not c.implicit_tls:
                    smtp.starttls(context=ssl.create_default_context())
                if c.username:
                    smtp.login(c.username, c.password or "")
                smtp.send_message(mail)
        except smtplib.SMTPRecipientsRefused as exc:
            # The exception holds the address: keep only the SMTP codes.
            codes = sorted({code for code, _ in exc.recipients.values()})
            first = codes[0] if codes else 550
            raise DeliveryError(f"smtp_recipient_refused_{first}", permanent=first >= 500) from None
        except smtplib.SMTPAuthenticationError as exc:
            raise DeliveryError(f"smtp_auth_{exc.smtp_code}") from None
        except smtplib.SMTPResponseException as exc:
            code = exc.smtp_code
            raise DeliveryError(f"smtp_{code}", permanent=500 <= code < 600) from None
        except smtplib.SMTPNotSupportedError:
            raise DeliveryError("smtp_starttls_not_supported") from None
        except smtplib.SMTPServerDisconnected:
            raise DeliveryError("smtp_disconnected") from None
        except TimeoutError:
            raise DeliveryError("smtp_timeout") from None
        except (smtplib.SMTPException, OSError):
            raise DeliveryError("smtp_unavailable") from None
