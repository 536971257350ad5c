"""Composition root: settings, runtime, routers, event handlers, the vitals batch
consumer and the durable timers wired together."""

from __future__ import annotations

from importlib.metadata import version

from fastapi import FastAPI

from kap_shared.events import event_types_on
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

# The version lives in pyproject.toml; the image tag and AsyncAPI document follow it.
VERSION = version("kap-monitoring")


def build(settings: MonitoringSettings | None = None) -> FastAPI:
    settings = settings or MonitoringSettings()
    runtime = ServiceRuntime(
        settings,
        [REGISTRY.metadata],
        version=VERSION,
        publishes=event_types_on(MONITORING_EVENTS, MONITORING_VITALS),
        migrations_package="kap_monitoring",
    )
    rules = settings.monitoring_rules
    ingest = VitalsIngest(rules)
    runtime.consume(HANDLERS)
    vitals = VitalsBatchConsumer(runtime, ingest, settings)
    if settings.vitals_consumer_enabled:
        vitals.subscribe(runtime.broker)
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
