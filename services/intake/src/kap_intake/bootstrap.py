"""Composition root: settings, runtime, routers and handlers wired together."""

from __future__ import annotations

from fastapi import FastAPI

from kap_shared.events.topics import INTAKE_EVENTS
from kap_shared.service.runtime import ServiceRuntime

from .adapters.tables import REGISTRY
from .config import IntakeSettings
from .entrypoints.http import router


def build(settings: IntakeSettings | None = None) -> FastAPI:
    settings = settings or IntakeSettings()
    settings.screening_rules  # noqa: B018 - load now: a bad RULES_FILE fails at start-up
    runtime = ServiceRuntime.of_service(settings, "kap_intake", REGISTRY.metadata, INTAKE_EVENTS)
    return runtime.http_app(
        [router],
        title="KAP intake",
        description="Referrals, screening, baseline measures and consent.",
    )
