"""The services' HTTP APIs, called server-side with the signed-in clinician's token.

The console never decides: it forwards the clinician's request and shows the
owning service's answer. An error answer becomes `ServiceError` carrying the
contract's `{"error": {code, message, details}}` so a page can explain it
(a 409's rule id and what would clear it).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import httpx

from .metrics import ConsoleMetrics


@dataclass
class ServiceError(Exception):
    service: str
    status: int
    code: str
    message: str
    details: Any = None

    def __str__(self) -> str:
        return f"{self.service} {self.status} {self.code}: {self.message}"


class ServiceUnavailable(Exception):
    """The service is not configured or could not be reached."""

    def __init__(self, service: str, reason: str) -> None:
        super().__init__(f"{service}: {reason}")
        self.service = service
        self.reason = reason


@dataclass
class Services:
    """Base URLs of the services and one pooled HTTP client shared by all requests."""

    urls: dict[str, str | None]
    client: httpx.AsyncClient
    metrics: ConsoleMetrics = field(default_factory=ConsoleMetrics)

    def as_(self, token: str) -> ServiceApi:
        return ServiceApi(self, token)


class ServiceApi:
    """One clinician's view of the platform's APIs."""

    def __init__(self, services: Services, token: str) -> None:
        self._services = services
        self._token = token

    def configured(self, service: str) -> bool:
        return bool(self._services.urls.get(service))

    async def request(
        self,
        service: str,
        method: str,
        path: str,
        *,
        json: Any = None,
        params: dict[str, Any] | None = None,
    ) -> Any:
        base = self._services.urls.get(service)
        if not base:
            raise ServiceUnavailable(service, "not configured")
        metrics = self._services.metrics
        started = time.perf_counter()
        try:
            response = await self._services.client.request(
                method,
                base.rstrip("/") + path,
                json=json,
                params=params,
                headers={"Authorization": f"Bearer {self._token}"},
            )
        except httpx.HTTPError as exc:
            metrics.service_calls.labels(service, method, "unreachable").inc()
            raise ServiceUnavailable(service, type(exc).__name__) from exc
        finally:
            metrics.service_call_latency.labels(service, method).observe(
                time.perf_counter() - started
            )
        metrics.service_calls.labels(service, method, str(response.status_code)).inc()
        if response.status_code >= 400:
            raise _error(service, response)
        if response.status_code == 204 or not response.content:
            return None
        return response.json()

    async def get(self, service: str, path: str, **params: Any) -> Any:
        clean = {k: v for k, v in params.items() if v is not None}
        return await self.request(service, "GET", path, params=clean or None)

    async def post(self, service: str, path: str, body: Any = None) -> Any:
        return await self.request(service, "POST", path, json=body)


def _error(service: str, response: httpx.Response) -> ServiceError:
    try:
        error = response.json().get("error", {})
    except ValueError:
        error = {}
    if not isinstance(error, dict):
        error = {}
    return ServiceError(
        service=service,
        status=response.status_code,
        code=str(error.get("code") or response.status_code),
        message=str(error.get("message") or response.reason_phrase),
        details=error.get("details"),
    )
