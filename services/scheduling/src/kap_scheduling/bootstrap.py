"""Composition root: settings, runtime, routers and handlers wired together."""

from __future__ import annotations

from fastapi import FastAPI

from kap_shared.service.runtime import ServiceRuntime

from .adapters.tables import REGISTRY
from .config import SchedulingSettings
from .entrypoints.http import router
from .entrypoints.stream import HANDLERS

VERSION = "0.1.0"


def build(settings: SchedulingSettings | None = None) -> FastAPI:
    settings = settings or SchedulingSettings()
    runtime = ServiceRuntime(
        settings,
        [REGISTRY.metadata],
        version=VERSION,
        publishes=(
            "TreatmentPlanCreated",
            "SessionScheduled",
            "SessionRescheduled",
            "SessionCancelled",
            "SessionCheckedIn",
            "SessionCompleted",
            "PhaseAdvanced",
            "IntegrationOverdue",
        ),
    )
    runtime.consume(HANDLERS)
    return runtime.http_app(
        [router],
        title="KAP scheduling",
        description="Treatment plans, sessions, rooms, clinicians and the rules that gate them.",
    )
