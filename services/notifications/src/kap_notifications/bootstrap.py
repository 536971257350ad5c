"""Composition root: settings, runtime, routers and handlers wired together."""

from __future__ import annotations

from fastapi import FastAPI

from kap_shared.service.runtime import ServiceRuntime

from .adapters.tables import REGISTRY
from .config import NotificationsSettings
from .entrypoints.http import router
from .entrypoints.stream import HANDLERS

VERSION = "0.1.0"


def build(settings: NotificationsSettings | None = None) -> FastAPI:
    settings = settings or NotificationsSettings()
    runtime = ServiceRuntime(
        settings,
        [REGISTRY.metadata],
        version=VERSION,
        publishes=("NotificationSent", "NotificationFailed", "AlertAcknowledged", "AlertEscalated"),
    )
    runtime.consume(HANDLERS)
    return runtime.http_app(
        [router],
        title="KAP notifications",
        description="Gets the right message to the right prescriber or therapist.",
    )
