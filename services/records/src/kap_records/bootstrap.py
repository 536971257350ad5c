"""Composition root: settings, runtime, routers, event handlers and timers wired together."""

from __future__ import annotations

from fastapi import FastAPI

from kap_shared.events.topics import RECORDS_EVENTS
from kap_shared.service.runtime import ServiceRuntime

from .adapters.tables import REGISTRY
from .config import RecordsSettings
from .entrypoints.http import router
from .entrypoints.stream import live_handlers, timers
from .entrypoints.vitals_batch import ReadingsBatchConsumer


def runtime_for(settings: RecordsSettings) -> ServiceRuntime:
    return ServiceRuntime.of_service(settings, "kap_records", REGISTRY.metadata, RECORDS_EVENTS)


def build(settings: RecordsSettings | None = None) -> FastAPI:
    settings = settings or RecordsSettings()
    rules = settings.records_rules  # a bad RULES_FILE fails here, at start-up
    runtime = runtime_for(settings)
    runtime.consume(live_handlers(rules))
    readings = ReadingsBatchConsumer(runtime, settings)
    runtime.consume_batches(readings)
    runtime.timers(timers(rules))
    app = runtime.http_app(
        [router],
        title="KAP records",
        description=(
            "One patient's care record across the platform: the timeline of every event, "
            "the REMS Patient Monitoring Form of each esketamine dosing session "
            "(SPR-PMF-1) and a FHIR R4 Bundle. Read-only projections of the topics, "
            "rebuildable with `kap-records rebuild`."
        ),
    )
    app.state.rules = rules
    app.state.readings_consumer = readings
    return app
