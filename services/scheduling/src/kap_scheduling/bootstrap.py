"""Composition root: settings, runtime, routers, event handlers and timers wired together."""

from __future__ import annotations

import asyncio

from fastapi import FastAPI

from kap_shared.events.envelope import utc_now
from kap_shared.events.topics import SCHEDULING_EVENTS
from kap_shared.service.runtime import ServiceRuntime

from .adapters.tables import REGISTRY
from .config import SchedulingSettings
from .domain.model import Clock
from .entrypoints.http import router
from .entrypoints.stream import TIMERS, handlers


def build(settings: SchedulingSettings | None = None, *, clock: Clock = utc_now) -> FastAPI:
    settings = settings or SchedulingSettings()
    rules = settings.scheduling_rules  # a bad RULES_FILE fails here, at start-up
    runtime = ServiceRuntime.of_service(
        settings, "kap_scheduling", REGISTRY.metadata, SCHEDULING_EVENTS
    )
    runtime.consume(handlers(rules))
    runtime.timers(TIMERS)
    app = runtime.http_app(
        [router],
        title="KAP scheduling",
        description=(
            "Clinic directory, treatment plans, sessions and the rules that gate them. "
            "A refused action answers 409 with the rule id as `error.code` "
            "(see the service README for the table of rules)."
        ),
    )
    app.state.rules = rules
    app.state.clock = clock
    # Serializes check-then-write of bookings and session changes in this process
    # (PostgreSQL also takes an advisory lock, for several instances).
    app.state.write_lock = asyncio.Lock()
    return app
