"""W3C trace context carried across HTTP and Kafka hops (CONTRACT: the
`traceparent` header). The active value lives in a contextvar; the HTTP
middleware and the Kafka consumer set it, the outbox copies it onto events."""

from __future__ import annotations

import re
import secrets
from contextvars import ContextVar

_TRACEPARENT = re.compile(r"^00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$")
_current: ContextVar[str | None] = ContextVar("traceparent", default=None)


def current_traceparent() -> str | None:
    return _current.get()


def continue_trace(incoming: str | None) -> str:
    """Start a child span of `incoming` (or a new trace) and make it current."""
    match = _TRACEPARENT.match(incoming or "")
    # All-zero ids are invalid per W3C Trace Context: start a new trace instead.
    valid = match and set(match.group(1)) != {"0"} and set(match.group(2)) != {"0"}
    trace_id = match.group(1) if match and valid else secrets.token_hex(16)
    value = f"00-{trace_id}-{secrets.token_hex(8)}-01"
    _current.set(value)
    return value


def trace_id_of(traceparent: str | None) -> str | None:
    match = _TRACEPARENT.match(traceparent or "")
    return match.group(1) if match else None
