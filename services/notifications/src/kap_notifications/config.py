"""Notifications settings: the platform's, plus channels, delivery retries,
the live stream and where the notification rules come from."""

from __future__ import annotations

from functools import cached_property
from typing import Self

from pydantic import Field, SecretStr, model_validator

from kap_shared.events.enums import Channel
from kap_shared.rules import SiteRules
from kap_shared.settings import ServiceSettings

from .adapters.channels import NotConfigured, Sender
from .adapters.channels.email import SmtpConfig, SmtpSender
from .adapters.channels.sms import SmsConfig, WebhookSmsSender
from .domain.delivery import RetryPolicy
from .domain.rules import NotificationRules


class NotificationsSettings(ServiceSettings):
    service_name: str = "notifications"
    http_port: int = 8004

    # Email over SMTP. Without SMTP_HOST every email delivery fails visibly
    # (NotificationFailed `channel_not_configured`).
    smtp_host: str | None = None
    smtp_port: int = Field(default=587, ge=1, le=65535)
    smtp_username: str | None = None
    smtp_password: SecretStr | None = None
    smtp_from: str = "kap-notifications@localhost"
    smtp_starttls: bool = True
    smtp_ssl: bool = False  # implicit TLS (port 465)
    smtp_timeout_seconds: float = Field(default=10.0, gt=0)

    # SMS through an HTTP webhook provider.
    sms_webhook_url: str | None = None
    sms_webhook_token: SecretStr | None = None
    sms_timeout_seconds: float = Field(default=10.0, gt=0)

    # The delivery worker (email, SMS). Pausing it keeps pending deliveries safe.
    delivery_worker_enabled: bool = True
    delivery_poll_seconds: float = Field(default=1.0, gt=0)
    delivery_max_attempts: int = Field(default=5, ge=1)
    delivery_backoff_seconds: float = Field(default=2.0, gt=0)
    delivery_backoff_max_seconds: float = Field(default=300.0, gt=0)
    # A claimed delivery another instance (or a restart) may take over after this.
    delivery_lease_seconds: float = Field(default=30.0, gt=0)
    delivery_concurrency: int = Field(default=8, ge=1)

    # GET /inbox/stream
    sse_keepalive_seconds: float = Field(default=15.0, gt=0)
    sse_queue_size: int = Field(default=256, ge=1)

    @model_validator(mode="after")
    def _lease_outlives_a_send(self) -> Self:
        longest = max(self.smtp_timeout_seconds, self.sms_timeout_seconds)
        if self.delivery_lease_seconds <= 2 * longest:
            raise ValueError(
                "DELIVERY_LEASE_SECONDS must exceed twice the SMTP/SMS timeouts, "
                "or a slow send could be taken over and sent twice"
            )
        return self

    @cached_property
    def notification_rules(self) -> SiteRules[NotificationRules]:
        """Defaults, overridden for the network and per site by RULES_FILE."""
        return SiteRules.load(NotificationRules, self.rules_file)

    @property
    def retry_policy(self) -> RetryPolicy:
        return RetryPolicy(
            max_attempts=self.delivery_max_attempts,
            base_seconds=self.delivery_backoff_seconds,
            max_seconds=self.delivery_backoff_max_seconds,
        )

    def senders(self) -> dict[Channel, Sender]:
        email: Sender = NotConfigured(Channel.EMAIL)
        if self.smtp_host:
            email = SmtpSender(
                SmtpConfig(
                    host=self.smtp_host,
                    port=self.smtp_port,
                    username=self.smtp_username,
                    password=self.smtp_password.get_secret_value() if self.smtp_password else None,
                    sender=self.smtp_from,
                    starttls=self.smtp_starttls,
                    implicit_tls=self.smtp_ssl,
                    timeout_seconds=self.smtp_timeout_seconds,
                )
            )
        sms: Sender = NotConfigured(Channel.SMS)
        if self.sms_webhook_url:
            token = self.sms_webhook_token
            sms = WebhookSmsSender(
                SmsConfig(
                    url=self.sms_webhook_url,
                    token=token.get_secret_value() if token else None,
                    timeout_seconds=self.sms_timeout_seconds,
                )
            )
        return {Channel.EMAIL: email, Channel.SMS: sms}
