"""SMS through an HTTP webhook provider (SMS_WEBHOOK_URL, SMS_WEBHOOK_TOKEN).

    POST <SMS_WEBHOOK_URL>
    Authorization: Bearer <SMS_WEBHOOK_TOKEN>
    Idempotency-Key: <notification_id>
    {"to": "+15550100200", "body": "...", "idempotency_key": "<notification_id>"}

2xx: accepted. 408, 425, 429 and 5xx, timeouts and connection errors: retried.
Any other 4xx: the request itself is wrong, failed at once.
"""

from __future__ import annotations

from dataclasses import dataclass

import httpx

from kap_shared.events.enums import Channel

from . import DeliveryError, Outgoing, sms_text

RETRYABLE_STATUS = frozenset({408, 425, 429})


@dataclass(frozen=True)
class SmsConfig:
    url: str
    token: str | None = None
    timeout_seconds: float = 10.0


class WebhookSmsSender:
    channel = Channel.SMS

    def __init__(self, config: SmsConfig, client: httpx.AsyncClient | None = None) -> None:
        self.config = config
        self._client = client

    def _http(self) -> httpx.AsyncClient:
        if self._client is None:
            self._client = httpx.AsyncClient(timeout=self.config.timeout_seconds)
        return self._client

    async def send(self, message: Outgoing) -> None:
        headers = {"Idempotency-Key": message.notification_id}
        if self.config.token:
            headers["Authorization"] = f"Bearer {self.config.token}"
        payload = {
            "to": message.to,
            "body": sms_text(message.subject, message.text),
            "idempotency_key": message.notification_id,
        }
        try:
            response = await self._http().post(self.config.url, json=payload, headers=headers)
        except httpx.TimeoutException:
            raise DeliveryError("sms_timeout") from None
        except httpx.HTTPError:
            raise DeliveryError("sms_unavailable") from None
        status = response.status_code
        if 200 <= status < 300:
            return
        retryable = status >= 500 or status in RETRYABLE_STATUS
        raise DeliveryError(f"sms_http_{status}", permanent=not retryable)

    async def close(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None
