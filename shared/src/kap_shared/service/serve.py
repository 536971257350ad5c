"""Run one service process: logging, then uvicorn with graceful shutdown."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

import uvicorn
from fastapi import FastAPI

from ..settings import ServiceSettings
from .runtime import configure_service_logging

S = TypeVar("S", bound=ServiceSettings)


def serve(settings: S, build: Callable[[S], FastAPI]) -> None:
    configure_service_logging(settings)
    app = build(settings)
    uvicorn.run(
        app,
        host=settings.http_host,
        port=settings.http_port,
        log_config=None,  # structlog owns logging
        access_log=False,
        timeout_graceful_shutdown=20,
    )
