"""Run one service process: logging and tracing, then uvicorn with graceful shutdown."""

from __future__ import annotations

import gc
from collections.abc import Callable
from types import FrameType
from typing import Protocol, TypeVar

import uvicorn
from fastapi import FastAPI

from ..settings import ServiceSettings
from .runtime import configure_service_logging

S = TypeVar("S", bound=ServiceSettings)


class StreamHub(Protocol):
    def close_threadsafe(self) -> None:
        """End every open stream; safe from a signal handler."""


def ending_streams(hub_attribute: str) -> Callable[[FastAPI], None]:
    """An `on_exit_signal` that ends the open streams of the hub the app keeps in
    `app.state.<hub_attribute>`, so shutdown does not wait for Server-Sent Events
    responses that never end by themselves."""

    def end_streams(app: FastAPI) -> None:
        hub: StreamHub = getattr(app.state, hub_attribute)
        hub.close_threadsafe()

    return end_streams


def settle_startup_objects() -> None:
    """Move what importing and building the app left alive (modules, routes, schemas,
    compiled validators: ~180,000 objects) out of the garbage collector's reach: a full
    collection otherwise walks them all, stopping the event loop and every request in
    flight for 60-150 ms (issue 13's profile of monitoring: about one per 3,000
    requests). Garbage among them is collected first; what is created later is
    collected as usual."""
    gc.collect()
    gc.freeze()


def server_config(app: FastAPI, host: str, port: int) -> uvicorn.Config:
    """How every service's uvicorn runs (and bench/http_floor.py's bare FastAPI app,
    the HTTP benchmark's baseline, so that the two differ only in the app)."""
    return uvicorn.Config(
        app,
        host=host,
        port=port,
        log_config=None,  # structlog owns logging
        access_log=False,
        timeout_graceful_shutdown=20,
        # A C event loop and HTTP parser instead of asyncio's loop and h11: less
        # CPU per request (issue 13: HTTP at 200 req/s on one process).
        loop="uvloop",
        http="httptools",
    )


def serve(
    settings: S,
    build: Callable[[S], FastAPI],
    *,
    on_exit_signal: Callable[[FastAPI], None] | None = None,
) -> None:
    """`on_exit_signal` runs first on SIGTERM/SIGINT, e.g. to end open streams:
    uvicorn waits for open responses before shutting down, and a Server-Sent Events
    stream never ends by itself."""
    configure_service_logging(settings)
    app = build(settings)
    settle_startup_objects()
    server = uvicorn.Server(server_config(app, settings.http_host, settings.http_port))
    if on_exit_signal is not None:
        handle_exit = server.handle_exit

        def exit_with_hook(sig: int, frame: FrameType | None) -> None:
            on_exit_signal(app)
            handle_exit(sig, frame)

        server.handle_exit = exit_with_hook  # type: ignore[method-assign]
    server.run()
