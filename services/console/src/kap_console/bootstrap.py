"""Composition root: build(settings) -> the console app.

No outbox and no clinical state. It has one HTTP client pool for the services'
APIs, one live Kafka reader in its own consumer group, the sign-in session store
(its own small database, shared by the replicas) and, when configured, the OpenID
Connect client.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from importlib.metadata import version
from pathlib import Path

import httpx
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.exceptions import HTTPException as StarletteHTTPException

from kap_shared.db import create_engine, create_tables, session_factory
from kap_shared.events import topics

from .adapters.live import LiveFeed, LiveHub
from .adapters.metrics import ConsoleMetrics
from .adapters.oidc import OidcClient
from .adapters.services import ServiceError, Services, ServiceUnavailable
from .adapters.sessions import SessionStore
from .adapters.tables import CONSOLE_REGISTRY
from .config import ConsoleSettings
from .entrypoints import auth, live, pages
from .entrypoints.web import Forbidden, NotSignedIn, redirect, render, store_of

# Every topic a card, list or journey may change on; dead-letter twins are not news.
LIVE_TOPICS = (
    topics.INTAKE_EVENTS,
    topics.SCHEDULING_EVENTS,
    topics.MONITORING_EVENTS,
    topics.MONITORING_VITALS,
    topics.NOTIFICATIONS_EVENTS,
    topics.RECORDS_EVENTS,
)

VERSION = version("kap-console")

STATIC = Path(__file__).resolve().parent / "static"

# No CDN and no inline script: everything the pages run is served from /static.
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; form-action 'self'; "
    "base-uri 'none'"
)


def _oidc(settings: ConsoleSettings) -> OidcClient | None:
    if not (settings.oidc_issuer and settings.oidc_client_id and settings.oidc_redirect_uri):
        return None
    return OidcClient(
        issuer=settings.oidc_issuer,
        client_id=settings.oidc_client_id,
        client_secret=settings.oidc_client_secret.get_secret_value()
        if settings.oidc_client_secret
        else None,
        redirect_uri=settings.oidc_redirect_uri,
        scopes=settings.oidc_scopes,
        audience=settings.kap_jwt_audience,
    )


def build(settings: ConsoleSettings) -> FastAPI:
    if settings.dev_sign_in and settings.kap_jwt_secret is None:
        raise ValueError("DEV_SIGN_IN needs KAP_JWT_SECRET to mint development tokens")
    hub = LiveHub()
    metrics = ConsoleMetrics()
    feed = LiveFeed(
        settings.kafka,
        LIVE_TOPICS,
        f"console-{settings.instance_id}",
        hub,
        metrics,
        linger_ms=settings.consumer_linger_ms,
    )

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # Sign-in sessions only (disposable: a schema change may drop them; everyone
        # signs in again), so the tables are created, not migrated.
        await create_tables(engine, [CONSOLE_REGISTRY.metadata])
        async with httpx.AsyncClient(
            timeout=settings.api_timeout_seconds,
            limits=httpx.Limits(max_connections=200, max_keepalive_connections=50),
        ) as client:
            app.state.services = Services(
                urls={
                    "intake": settings.intake_url,
                    "scheduling": settings.scheduling_url,
                    "monitoring": settings.monitoring_url,
                    "notifications": settings.notifications_url,
                    "records": settings.records_url,
                },
                client=client,
                metrics=metrics,
            )
            feed.start()
            try:
                yield
            finally:
                hub.close_all()
                await feed.stop()
                await engine.dispose()

    app = FastAPI(
        title="KAP care-team console",
        version=VERSION,
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
    )
    app.state.settings = settings
    app.state.live_hub = hub
    app.state.live_feed = feed
    app.state.metrics = metrics
    engine = create_engine(settings.resolved_database_url)
    metrics.watch_database(engine)
    app.state.sessions = SessionStore(session_factory(engine), settings.session_ttl_seconds)
    app.state.oidc = _oidc(settings)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    app.include_router(auth.router)
    app.include_router(live.router)
    app.include_router(pages.router)

    @app.get("/healthz", include_in_schema=False)
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz", include_in_schema=False)
    async def readyz() -> Response:
        if feed.ready:
            return JSONResponse({"status": "ready"})
        return JSONResponse({"status": "not_ready", "live": "joining"}, status_code=503)

    @app.get("/metrics", include_in_schema=False)
    async def prometheus() -> Response:
        metrics.live_listeners.set(hub.listeners)
        return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)

    @app.middleware("http")
    async def count_requests(request: Request, call_next):  # type: ignore[no-untyped-def]
        started = time.perf_counter()
        response: Response = await call_next(request)
        # The route's template (not the URL): ids must not become label values.
        path = getattr(request.scope.get("route"), "path", "unmatched")
        metrics.http_requests.labels(request.method, path, str(response.status_code)).inc()
        metrics.http_latency.labels(request.method, path).observe(time.perf_counter() - started)
        return response

    @app.middleware("http")
    async def security_headers(request: Request, call_next):  # type: ignore[no-untyped-def]
        response: Response = await call_next(request)
        response.headers.setdefault("Content-Security-Policy", CSP)
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("Referrer-Policy", "same-origin")
        if response.headers.get("content-type", "").startswith("text/html"):
            response.headers.setdefault("Cache-Control", "no-store")
        return response

    def _is_partial(request: Request) -> bool:
        return request.headers.get("hx-request") == "true"

    @app.exception_handler(NotSignedIn)
    async def not_signed_in(request: Request, _: NotSignedIn) -> Response:
        if _is_partial(request) or request.url.path == "/live":
            return Response(status_code=401, headers={"HX-Redirect": "/sign-in"})
        return redirect(f"/sign-in?next={request.url.path}")

    async def error_page(request: Request, status: int, title: str, message: str) -> Response:
        """The console's error page, with the clinician's sign-in when there is one."""
        cookie = request.cookies.get(settings.session_cookie_name)
        sign_in = await store_of(request).get(cookie)
        return render(request, "error.html", sign_in, status, title=title, message=message)

    @app.exception_handler(Forbidden)
    async def forbidden(request: Request, exc: Forbidden) -> Response:
        return await error_page(request, 403, "Not available to you", exc.message)

    @app.exception_handler(ServiceError)
    async def service_error(request: Request, exc: ServiceError) -> Response:
        if exc.status == 401:  # the clinician's token expired: sign in again
            await store_of(request).drop(request.cookies.get(settings.session_cookie_name))
            return redirect(f"/sign-in?next={request.url.path}")
        titles = {403: "Not available to you", 404: "Not found"}
        return await error_page(
            request,
            exc.status if exc.status in titles else 502,
            titles.get(exc.status, f"{exc.service} could not answer"),
            f"{exc.message} ({exc.code})",
        )

    @app.exception_handler(ServiceUnavailable)
    async def unavailable(request: Request, exc: ServiceUnavailable) -> Response:
        return await error_page(
            request,
            503,
            "A service is unavailable",
            f"The {exc.service} service {exc.reason}. Try again shortly.",
        )

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        return await error_page(request, exc.status_code, "Request not understood", str(exc.detail))

    return app
