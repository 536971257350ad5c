"""Composition root: settings, runtime, routers and handlers wired together."""

from __future__ import annotations

from importlib.metadata import version

from fastapi import FastAPI

from kap_shared.events import event_types_on
from kap_shared.events.topics import INTAKE_EVENTS
from kap_shared.service.runtime import ServiceRuntime

from .adapters.tables import REGISTRY
from .config import IntakeSettings
from .entrypoints.http import router

# The version lives in pyproject.toml; the image tag and AsyncAPI document follow it.
VERSION = version("kap-intake")


def build(settings: IntakeSettings | None = None) -> FastAPI:
    settings = settings or IntakeSettings()
    settings.screening_rules  # noqa: B018 - load now: a bad RULES_FILE fails at start-up
    runtime = ServiceRuntime(
        settings,
        [REGISTRY.metadata],
        version=VERSION,
        publishes=event_types_on(INTAKE_EVENTS),
        migrations_package="kap_intake",
    )
    return runtime.http_app(
        [router],
        title="KAP intake",
        description="Referrals, screening, baseline measures and consent.",
    )
