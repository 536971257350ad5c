"""Composition root: settings, runtime, routers and handlers wired together."""

from __future__ import annotations

from fastapi import FastAPI

from kap_shared.service.runtime import ServiceRuntime

from .adapters.tables import REGISTRY
from .config import MonitoringSettings
from .entrypoints.http import router
from .entrypoints.stream import HANDLERS

VERSION = "0.1.0"


def build(settings: MonitoringSettings | None = None) -> FastAPI:
    settings = settings or MonitoringSettings()
    runtime = ServiceRuntime(
        settings,
        [REGISTRY.metadata],
        version=VERSION,
        publishes=(
            "DoseAdministered",
            "VitalsAlert",
            "VitalsAlertResolved",
            "ObservationDue",
            "DischargeCleared",
            "OutcomeRecorded",
            "SafetyConcernRaised",
            "VitalsRecorded",
        ),
    )
    runtime.consume(HANDLERS)
    return runtime.http_app(
        [router],
        title="KAP monitoring",
        description="Vitals during and after dosing, safety rules, discharge, outcome measures.",
    )
