"""Run one service process: logging, then uvicorn with graceful shutdown."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

import uvicorn
from fastapi import FastAPI

from ..logging import configure_logging
from ..settings import ServiceSettings

S = TypeVar("S", bound=ServiceSettings)


def serve(settings: S, build: Callable[[S], FastAPI]) -> None:
    configure_logging(settings.log_level, settings.log_format, settings.service_name)
    app = build(settings)
    uvicorn.run(
        app,
        host=settings.http_host,
        port=settings.http_port,
        log_config=None,  # structlog owns logging
        access_log=False,
        timeout_graceful_shutdown=20,
    )
