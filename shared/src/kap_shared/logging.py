"""structlog set-up: JSON lines in production, a console renderer in development.

Context (event_id, correlation_id, patient_id, site_id, trace ids) is bound
per message and per request through contextvars, so every line carries it.
PHI never enters a log line: `drop_phi` redacts the PHI vocabulary's keys (`kap_shared.phi`:
intake's PHI columns and their aliases) defensively.
"""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Callable, MutableMapping
from typing import Any

import structlog

from .phi import PHI_KEYS as PHI_KEYS


def _redact(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: "[redacted]" if k in PHI_KEYS else _redact(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_redact(v) for v in value]
    return value


def drop_phi(_: Any, __: str, event_dict: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    """Redact PHI keys at any depth, in case someone logs a whole payload."""
    for key, value in list(event_dict.items()):
        event_dict[key] = "[redacted]" if key in PHI_KEYS else _redact(value)
    return event_dict


class RateLimitFilter(logging.Filter):
    """Lets one record per (logger, message template) through per `interval` seconds.

    While the broker is unreachable aiokafka logs the same connection error hundreds
    of times a second from every client; an outage should read as a few lines (the
    runtime's own `broker.down` / `broker.still_down` / `broker.back`), not megabytes.
    The first record of a burst passes; the next one to pass says how many similar
    records were suppressed in between."""

    def __init__(
        self,
        prefixes: tuple[str, ...] = ("aiokafka", "kafka"),
        interval: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__()
        self.prefixes = prefixes
        self.interval = interval
        self._clock = clock
        self._last: dict[tuple[str, str], float] = {}
        self._suppressed: dict[tuple[str, str], int] = {}

    def filter(self, record: logging.LogRecord) -> bool:
        if not record.name.startswith(self.prefixes):
            return True
        key = (record.name, str(record.msg))
        now = self._clock()
        last = self._last.get(key)
        if last is not None and now - last < self.interval:
            self._suppressed[key] = self._suppressed.get(key, 0) + 1
            return False
        self._last[key] = now
        suppressed = self._suppressed.pop(key, 0)
        if suppressed:
            record.msg = f"{record.msg} [{suppressed} similar lines suppressed]"
        return True


def configure_logging(level: str = "INFO", fmt: str = "json", service: str = "kap") -> None:
    renderer: structlog.types.Processor = (
        structlog.dev.ConsoleRenderer() if fmt == "console" else structlog.processors.JSONRenderer()
    )
    shared: list[structlog.types.Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        drop_phi,
    ]
    structlog.configure(
        processors=[*shared, structlog.processors.format_exc_info, renderer],
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelName(level.upper())),
        logger_factory=structlog.PrintLoggerFactory(sys.stdout),
        cache_logger_on_first_use=True,
    )
    # Library loggers (uvicorn, aiokafka, faststream) go through the same renderer.
    handler = logging.StreamHandler(sys.stdout)
    handler.addFilter(RateLimitFilter())
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            processor=renderer, foreign_pre_chain=[*shared, structlog.stdlib.add_logger_name]
        )
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # aiokafka is chatty; httpx logs request URLs (which may carry ids) at INFO.
    for noisy in ("aiokafka", "httpx", "httpcore"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))
    structlog.contextvars.bind_contextvars(service=service)


def get_logger(name: str | None = None) -> structlog.stdlib.BoundLogger:
    logger: structlog.stdlib.BoundLogger = structlog.get_logger(name)
    return logger
