"""Scheduling settings: the platform's plus the scheduling rules' defaults."""

from __future__ import annotations

from kap_shared.settings import ServiceSettings


class SchedulingSettings(ServiceSettings):
    service_name: str = "scheduling"
    http_port: int = 8002
