"""Times for monitoring's test requests and events: now, a while ago (as the API's
RFC 3339 strings) and back from a response's timestamp."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta


def now() -> datetime:
    return datetime.now(UTC)


def iso(value: datetime) -> str:
    return value.isoformat()


def parse(value: str) -> datetime:
    """A timestamp of a response or event (RFC 3339, `Z` for UTC)."""
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def ago(**delta: float) -> str:
    return iso(now() - timedelta(**delta))
