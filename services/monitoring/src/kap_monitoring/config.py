"""Monitoring settings."""

from __future__ import annotations

from kap_shared.settings import ServiceSettings


class MonitoringSettings(ServiceSettings):
    service_name: str = "monitoring"
    http_port: int = 8003
