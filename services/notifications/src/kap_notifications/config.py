"""Notifications settings."""

from __future__ import annotations

from kap_shared.settings import ServiceSettings


class NotificationsSettings(ServiceSettings):
    service_name: str = "notifications"
    http_port: int = 8004
