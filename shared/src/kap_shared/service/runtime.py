"""The runtime every service is built on: database, broker, outbox relay,
consumer and HTTP app, wired the same way in all four services.

A service's `bootstrap.py` (its composition root) builds a `ServiceRuntime`
from its settings and table metadata, registers its event handlers and HTTP
routers, and hands the result to uvicorn.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from importlib.metadata import version
from typing import TYPE_CHECKING, Any

import structlog
from fastapi import APIRouter, FastAPI, Response
from fastapi.responses import JSONResponse, PlainTextResponse
from faststream.kafka import KafkaBroker
from faststream.specification import AsyncAPI
from opentelemetry.trace import SpanKind
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pydantic import BaseModel
from sqlalchemy import MetaData, text
from starlette.datastructures import Headers, MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ..auth.tokens import TokenVerifier
from ..db import create_engine, create_tables, session_factory
from ..events.catalog import EVENT_TYPES, event_types_on
from ..events.envelope import as_utc, utc_now
from ..http.errors import error_body, install_error_handlers
from ..http.idempotency import IdempotencyMiddleware
from ..http.input_guard import install_input_guard
from ..http.openapi import document_platform_errors
from ..logging import configure_logging, get_logger
from ..messaging.broker import create_broker, dead_letter_middleware, outbox_sender
from ..messaging.consumer import EventConsumer, EventHandler
from ..messaging.outbox import OutboxRelay, outbox_backlog
from ..messaging.timers import TimerHandler, TimerWorker
from ..messaging.topics_admin import ensure_topics
from ..messaging.unit_of_work import UnitOfWork
from ..migrations import migrations_dir, upgrade
from ..retry import until_up
from ..settings import ServiceSettings
from ..tracing import configure_tracing, trace_id_of_span, traced, traceparent_of
from .docs_ui import STATIC_PATH, install_docs_ui
from .metrics import ServiceMetrics

log = get_logger(__name__)

if TYPE_CHECKING:
    from ..messaging.batch_consumer import BatchConsumer


class Readiness(BaseModel):
    ready: bool
    checks: dict[str, bool]


@dataclass
class ServiceRuntime:
    settings: ServiceSettings
    metadatas: Sequence[MetaData]
    version: str = "0.0.0"
    # Event types this service publishes (documented in its AsyncAPI).
    publishes: Sequence[str] = ()
    # The package whose `migrations/` folder holds this service's Alembic revisions.
    migrations_package: str | None = None
    metrics: ServiceMetrics = field(default_factory=ServiceMetrics)

    def __post_init__(self) -> None:
        self.engine = create_engine(self.settings.resolved_database_url)
        self.metrics.watch_database(self.engine)
        self.sessions = session_factory(self.engine)
        self.broker: KafkaBroker = create_broker(
            self.settings.kafka,
            client_id=self.settings.service_name,
            middlewares=(
                dead_letter_middleware(
                    self.settings.service_name,
                    max_attempts=self.settings.consumer_max_attempts,
                    backoff_seconds=self.settings.consumer_retry_backoff_seconds,
                    on_dead_letter=lambda topic, err: self.metrics.dead_letters.labels(
                        topic, err
                    ).inc(),
                ),
            ),
        )
        self.relay = OutboxRelay(
            self.engine,
            self.sessions,
            outbox_sender(self.broker),
            batch_size=self.settings.outbox_batch_size,
            poll_seconds=self.settings.outbox_poll_seconds,
            pipelined=self.settings.outbox_pipelined,
            observe=lambda stage, seconds: self.metrics.outbox_relay_latency.labels(stage).observe(
                seconds
            ),
        )
        self.broker_connected = False
        self.database_ready = False
        self._consumer: EventConsumer | None = None
        self.batch_consumers: list[BatchConsumer] = []
        self._watch_task: asyncio.Task[None] | None = None
        self._timers: TimerWorker | None = None
        self._scrape_hooks: list[Callable[[], Awaitable[None]]] = []
        for event_type in self.publishes:
            cls = EVENT_TYPES[event_type]
            self.broker.publisher(cls.topic, title=event_type, schema=cls)

    @classmethod
    def of_service(
        cls, settings: ServiceSettings, package: str, metadata: MetaData, *topics: str
    ) -> ServiceRuntime:
        """The runtime of the service in `package` (e.g. "kap_intake"): its tables, the
        event types of the topics it owns, its migrations and its version, which lives in
        its pyproject.toml (the image tag and AsyncAPI document follow it)."""
        return cls(
            settings,
            [metadata],
            version=version(package.replace("_", "-")),
            publishes=event_types_on(*topics),
            migrations_package=package,
        )

    # -- composition -------------------------------------------------------

    def unit_of_work(self) -> UnitOfWork:
        return UnitOfWork(self.sessions, self.relay.notify)

    def consume_batches(self, consumer: BatchConsumer) -> None:
        """Subscribe a batch consumer (a high-volume topic, one transaction a batch)."""
        consumer.subscribe(self.broker)
        self.batch_consumers.append(consumer)

    def consume(self, handlers: dict[Any, EventHandler]) -> EventConsumer:
        """Register the service's event handlers in its consumer group."""
        self._consumer = EventConsumer(
            group_id=self.settings.service_name,
            sessions=self.sessions,
            handlers=handlers,
            on_commit=self.relay.notify,
            observe=self._observe_consumed,
            linger_ms=self.settings.consumer_linger_ms,
        )
        self._consumer.subscribe(self.broker)
        return self._consumer

    def _observe_consumed(self, topic: str, event_type: str, outcome: str, seconds: float) -> None:
        self.metrics.events_consumed.labels(topic, event_type, outcome).inc()
        self.metrics.handler_latency.labels(topic).observe(seconds)

    async def consumer_lag(self) -> dict[tuple[str, int], int]:
        """Messages behind the end of each assigned partition, per subscriber."""
        lag: dict[tuple[str, int], int] = {}
        for subscriber in self.broker.subscribers:
            consumer = getattr(subscriber, "consumer", None)
            if consumer is None:
                continue
            for partition in consumer.assignment():
                highwater = consumer.highwater(partition)
                if highwater is None:
                    continue
                position = await consumer.position(partition)
                lag[(partition.topic, partition.partition)] = max(0, highwater - position)
        return lag

    def on_scrape(self, hook: Callable[[], Awaitable[None]]) -> None:
        """Refresh a service's own gauges (registered on `metrics.registry`) per scrape."""
        self._scrape_hooks.append(hook)

    def timers(self, handlers: dict[str, TimerHandler]) -> TimerWorker:
        """Register handlers for this service's durable timers (by kind)."""
        self._timers = TimerWorker(
            self.sessions,
            handlers,
            on_commit=self.relay.notify,
            poll_seconds=self.settings.timer_poll_seconds,
        )
        return self._timers

    def token_verifier(self) -> TokenVerifier:
        secret = self.settings.kap_jwt_secret
        return TokenVerifier(
            hs256_secret=secret.get_secret_value() if secret else None,
            jwks_url=self.settings.kap_jwt_jwks_url,
            audience=self.settings.kap_jwt_audience,
        )

    # -- lifecycle -----------------------------------------------------------

    async def start(self) -> None:
        """Prepare the schema, then connect to Kafka, each with backoff in the
        background: start-up order of database, Kafka and services does not
        matter; /readyz answers 503 until both are reachable."""
        self.database_ready = False
        try:
            await self._prepare_schema()
        except Exception as exc:
            log.warning("database.unavailable", error=repr(exc)[:300])
        self._connect_task = asyncio.create_task(self._connect(), name="connect")

    async def _prepare_schema(self) -> None:
        if self.settings.db_schema == "migrate" and self.migrations_package:
            await asyncio.to_thread(
                upgrade,
                self.settings.resolved_database_url,
                migrations_dir(self.migrations_package),
            )
        else:
            await create_tables(self.engine, self.metadatas)
        self.database_ready = True
        if self._timers is not None:
            # Timers only write to the database (and outbox): they need no broker.
            self._timers.start()

    async def _connect(self) -> None:
        if not self.database_ready:
            async for attempt in until_up("database.unavailable"):
                with attempt:
                    await self._prepare_schema()
        await self._connect_broker()

    async def _connect_broker(self) -> None:
        """Connect with backoff: start-up order of Kafka and services does not matter."""
        async for attempt in until_up("broker.unavailable"):
            with attempt:
                await ensure_topics(
                    self.settings.kafka,
                    partitions=self.settings.kafka_topic_partitions,
                    replication=self.settings.kafka_topic_replication,
                )
                await self.broker.start()
        self.broker_connected = True
        if self.settings.outbox_relay_enabled:
            self.relay.start()
        log.info("broker.connected", bootstrap=self.settings.kafka.bootstrap_servers)
        self._watch_task = asyncio.create_task(self._watch_broker(), name="broker-watch")

    async def _watch_broker(self, every: float = 2.0, remind_every: float = 30.0) -> None:
        """An outage in a few clear lines: `broker.down` once, `broker.still_down` every
        30 s, `broker.back` when it answers again (aiokafka's own per-attempt errors are
        rate-limited in `kap_shared.logging`). /readyz says 503 meanwhile."""
        down_since: float | None = None
        reminded = 0.0
        while True:
            await asyncio.sleep(every)
            try:
                up = bool(await self.broker.ping(timeout=every))
            except Exception:
                up = False
            now = time.monotonic()
            if not up and down_since is None:
                down_since = reminded = now
                log.error(
                    "broker.down",
                    bootstrap=self.settings.kafka.bootstrap_servers,
                    action="retrying in the background; events wait in the outbox, /readyz 503",
                )
            elif not up and down_since is not None and now - reminded >= remind_every:
                reminded = now
                log.warning("broker.still_down", down_seconds=round(now - down_since))
            elif up and down_since is not None:
                log.info("broker.back", down_seconds=round(now - down_since, 1))
                down_since = None

    async def stop(self) -> None:
        """Graceful: stop consuming, finish in-flight handlers, flush the outbox, exit."""
        if not self._connect_task.done():
            self._connect_task.cancel()
        if self._watch_task is not None:
            self._watch_task.cancel()
        if self._timers is not None:
            await self._timers.stop()
        if self.broker_connected:
            for subscriber in self.broker.subscribers:
                await subscriber.stop()
            await self.relay.stop(flush_timeout=10.0)
            await self.broker.stop()
        await self.engine.dispose()

    async def ready(self) -> dict[str, bool]:
        checks = {"broker": False, "database": False}
        if not self.database_ready:
            return checks  # schema not prepared yet
        try:
            async with self.engine.connect() as conn:
                await conn.execute(text("SELECT 1"))
            checks["database"] = True
        except Exception as exc:
            log.warning("readyz.database_failed", error=repr(exc)[:200])
        if self.broker_connected:
            try:
                checks["broker"] = bool(await self.broker.ping(timeout=2.0))
            except Exception:
                checks["broker"] = False
        return checks

    def asyncapi(self) -> dict[str, Any]:
        spec = AsyncAPI(
            self.broker,
            title=f"kap-{self.settings.service_name}",
            version=self.version,
            description=f"Kafka channels of the {self.settings.service_name} service",
        ).to_specification()
        document: dict[str, Any] = spec.to_jsonable()
        return document

    # -- HTTP ----------------------------------------------------------------

    def http_app(self, routers: Sequence[APIRouter], *, title: str, description: str) -> FastAPI:
        runtime = self

        @asynccontextmanager
        async def lifespan(_: FastAPI) -> AsyncIterator[None]:
            await runtime.start()
            try:
                yield
            finally:
                await runtime.stop()

        app = FastAPI(
            title=title,
            version=self.version,
            description=description,
            lifespan=lifespan,
            docs_url=None,  # served by install_docs_ui, from the service itself
            redoc_url=None,
        )
        app.state.runtime = self
        app.state.token_verifier = self.token_verifier()
        install_error_handlers(app)
        # Inside the request context (503 while not ready, trace and metrics apply to replays).
        app.add_middleware(IdempotencyMiddleware)
        # Inside the request context (added after it runs before it): its 422s are traced.
        install_input_guard(app, exempt=OPERATIONS_PATHS)
        app.add_middleware(RequestContext, metrics=self.metrics)

        @app.get("/healthz", tags=["operations"], summary="Process is up")
        async def healthz() -> dict[str, str]:
            return {"status": "ok"}

        @app.get(
            "/readyz",
            tags=["operations"],
            summary="Broker and database reachable",
            response_model=Readiness,
            responses={503: {"model": Readiness, "description": "not ready (yet)"}},
        )
        async def readyz() -> JSONResponse:
            checks = await runtime.ready()
            ok = all(checks.values())
            return JSONResponse({"ready": ok, "checks": checks}, status_code=200 if ok else 503)

        @app.get(
            "/metrics",
            tags=["operations"],
            summary="Prometheus metrics",
            response_class=PlainTextResponse,
        )
        async def metrics() -> Response:
            with contextlib.suppress(Exception):  # metrics must answer while the DB is down
                count, oldest = await outbox_backlog(runtime.sessions)
                runtime.metrics.outbox_backlog.set(count)
                runtime.metrics.outbox_oldest_age.set(
                    (utc_now() - as_utc(oldest)).total_seconds() if oldest else 0
                )
                if runtime._timers is not None:
                    runtime.metrics.timers_due.set(await runtime._timers.due_count())
            runtime.metrics.consumer_lag.clear()
            for (topic, partition), behind in (await runtime.consumer_lag()).items():
                runtime.metrics.consumer_lag.labels(topic, str(partition)).set(behind)
            for hook in runtime._scrape_hooks:
                try:
                    await hook()
                except Exception as exc:  # one failing gauge must not hide the rest
                    log.warning("metrics.scrape_hook_failed", error=repr(exc)[:300])
            return Response(
                generate_latest(runtime.metrics.registry), media_type=CONTENT_TYPE_LATEST
            )

        install_docs_ui(app, runtime.asyncapi)

        for router in routers:
            document_platform_errors(router.routes)
            app.include_router(router)
        return app


OPERATIONS_PATHS = frozenset(
    {"/healthz", "/readyz", "/metrics", "/asyncapi", "/docs", "/openapi.json"}
)


def _is_operations_path(path: str) -> bool:
    return path in OPERATIONS_PATHS or path.startswith(STATIC_PATH + "/")


class RequestContext:
    """Per request: a server span (its `traceparent` on the response), the trace and
    correlation ids on every log line, the request metrics, and 503 for the service's
    own endpoints while its database is not ready. Plain ASGI (see kap_shared.http.asgi)."""

    def __init__(self, app: ASGIApp, metrics: ServiceMetrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        method, path = scope["method"], scope["path"]
        headers = Headers(scope=scope)
        with traced(f"{method} {path}", headers.get("traceparent"), SpanKind.SERVER) as span:
            traceparent = traceparent_of(span)
            structlog.contextvars.clear_contextvars()
            structlog.contextvars.bind_contextvars(
                trace_id=trace_id_of_span(span),
                correlation_id=headers.get("x-correlation-id"),
            )
            started = time.perf_counter()
            status = 500  # unless the app answers (an unhandled error is a 500)

            async def send_traced(message: Message) -> None:
                nonlocal status
                if message["type"] == "http.response.start":
                    status = message["status"]
                    MutableHeaders(scope=message)["traceparent"] = traceparent
                await send(message)

            runtime: ServiceRuntime = scope["app"].state.runtime
            try:
                if not runtime.database_ready and not _is_operations_path(path):
                    await _not_ready(scope, receive, send_traced)
                else:
                    await self.app(scope, receive, send_traced)
            finally:
                route = getattr(scope.get("route"), "path", "unmatched")
                span.update_name(f"{method} {route}")
                span.set_attribute("http.route", route)
                span.set_attribute("http.response.status_code", status)
                self.metrics.http_requests.labels(method, route, str(status)).inc()
                self.metrics.http_latency.labels(method, route).observe(
                    time.perf_counter() - started
                )


async def _not_ready(scope: Scope, receive: Receive, send: Send) -> None:
    response = JSONResponse(
        error_body("not_ready", "the service is starting: its database is not reachable"),
        status_code=503,
        headers={"Retry-After": "5"},
    )
    await response(scope, receive, send)


def configure_service_logging(settings: ServiceSettings) -> None:
    configure_logging(settings.log_level, settings.log_format, settings.service_name)
    configure_tracing(settings.service_name, settings.otel_exporter_otlp_endpoint)
