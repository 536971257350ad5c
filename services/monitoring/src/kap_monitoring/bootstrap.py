"""Composition root: settings, runtime, routers, event handlers, the vitals batch
consumer and the durable timers wired together."""

from __future__ import annotations

from fastapi import FastAPI

from kap_shared.events.topics import MONITORING_EVENTS, MONITORING_VITALS
from kap_shared.service.runtime import ServiceRuntime

from .adapters.metrics import register_open_alerts
from .adapters.tables import REGISTRY
from .config import MonitoringSettings
from .entrypoints.http import router
from .entrypoints.stream import HANDLERS
from .entrypoints.vitals_batch import VitalsBatchConsumer
from .handlers.observations import timer_handlers
from .handlers.vitals import VitalsIngest


def build(settings: MonitoringSettings | None = None) -> FastAPI:
    settings = settings or MonitoringSettings()
    runtime = ServiceRuntime.of_service(
        settings, "kap_monitoring", REGISTRY.metadata, MONITORING_EVENTS, MONITORING_VITALS
    )
    rules = settings.monitoring_rules
    ingest = VitalsIngest(rules)
    runtime.consume(HANDLERS)
    vitals = VitalsBatchConsumer(runtime, ingest, settings)
    if settings.vitals_consumer_enabled:
        runtime.consume_batches(vitals)
    runtime.timers(timer_handlers(rules))
    register_open_alerts(runtime)
    app = runtime.http_app(
        [router],
        title="KAP monitoring",
        description=(
            "Vitals during and after dosing, safety rules, discharge, outcome measures. "
            "Rule ids in alerts and 409 responses are the clinical rulebook's."
        ),
    )
    app.state.ingest = ingest
    app.state.vitals_consumer = vitals
    return app
