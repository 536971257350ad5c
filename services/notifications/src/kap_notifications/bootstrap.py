"""Composition root: settings, runtime, routers, handlers and workers wired together."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from kap_shared.events.topics import NOTIFICATIONS_EVENTS
from kap_shared.logging import get_logger
from kap_shared.messaging.live import LiveConsumer
from kap_shared.service.runtime import ServiceRuntime

from .adapters.hub import InboxHub
from .adapters.metrics import NotificationMetrics
from .adapters.tables import REGISTRY
from .config import NotificationsSettings
from .entrypoints.http import router
from .entrypoints.stream import event_handlers, live_handlers, timer_handlers
from .handlers.delivery import DeliveryWorker
from .handlers.handoffs import Handoffs
from .handlers.notify import Notifier

log = get_logger(__name__)


def build(settings: NotificationsSettings | None = None) -> FastAPI:
    settings = settings or NotificationsSettings()
    runtime = ServiceRuntime.of_service(
        settings, "kap_notifications", REGISTRY.metadata, NOTIFICATIONS_EVENTS
    )
    metrics = NotificationMetrics(runtime.metrics.registry)
    hub = InboxHub(queue_size=settings.sse_queue_size)
    metrics.track_stream_clients(lambda: hub.subscriber_count)
    worker = DeliveryWorker(
        runtime.sessions,
        settings.senders(),
        settings.retry_policy,
        on_commit=runtime.relay.notify,
        poll_seconds=settings.delivery_poll_seconds,
        lease_seconds=settings.delivery_lease_seconds,
        concurrency=settings.delivery_concurrency,
        metrics=metrics,
    )
    notifier = Notifier(
        rules=settings.notification_rules,
        hub=hub,
        wake_delivery=worker.notify,
        metrics=metrics,
    )
    notifier.extensions.append(Handoffs(notifier))  # the handoff rows (issue 11)
    runtime.consume(event_handlers(notifier))
    runtime.timers(timer_handlers(notifier))
    # Streams on this instance also get what other instances created (README: live stream).
    live = LiveConsumer(settings.service_name, live_handlers(runtime.sessions, hub))
    live.subscribe(runtime.broker)
    app = runtime.http_app(
        [router],
        title="KAP notifications",
        description=(
            "Gets the right message to the right clinician on the right channel (in-app, "
            "SMS, email); acknowledgement and escalation of critical alerts."
        ),
    )
    app.state.inbox_hub = hub
    app.state.notifier = notifier
    app.state.live_consumer = live
    app.state.delivery_worker = worker
    app.state.notification_metrics = metrics
    _run_alongside(app, settings, worker, hub)
    return app


def _run_alongside(
    app: FastAPI, settings: NotificationsSettings, worker: DeliveryWorker, hub: InboxHub
) -> None:
    """Start the delivery worker after the runtime (schema ready) and stop it, and
    end live streams, before the runtime shuts down."""
    runtime_lifespan = app.router.lifespan_context

    @asynccontextmanager
    async def lifespan(application: FastAPI) -> AsyncIterator[None]:
        async with runtime_lifespan(application):
            if settings.delivery_worker_enabled:
                worker.start()
            else:
                log.warning("delivery.worker_paused")
            try:
                yield
            finally:
                hub.close()
                await worker.stop()

    app.router.lifespan_context = lifespan
