"""Build a service's app the way it runs, without starting it, to read what it
publishes and subscribes to (AsyncAPI, consumer-side contract tests).

The app is built through the service's own composition root
(`kap_<service>.bootstrap.build`) with a dummy development secret, a throw-away
SQLite file and a broker address that cannot resolve (`kafka.invalid`, RFC 2606):
building wires the broker's publishers and subscribers without connecting.
"""

from __future__ import annotations

import importlib
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from ..events.catalog import EVENT_TYPES
from ..events.envelope import Envelope

SERVICES = ("intake", "scheduling", "monitoring", "notifications", "records")
PLACEHOLDER_BOOTSTRAP = "kafka.invalid:9092"


@contextmanager
def _environment(values: dict[str, str]) -> Iterator[None]:
    saved = {name: os.environ.get(name) for name in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


@contextmanager
def built_app(service: str) -> Iterator[Any]:
    """The service's FastAPI app, built by its bootstrap and never started."""
    bootstrap = importlib.import_module(f"kap_{service}.bootstrap")
    with tempfile.TemporaryDirectory(prefix=f"kap-contracts-{service}-") as scratch:
        env = {
            "KAP_JWT_SECRET": "contract-generation-only-not-a-real-secret",
            "KAFKA_BOOTSTRAP_SERVERS": PLACEHOLDER_BOOTSTRAP,
            "KAFKA_SECURITY_PROTOCOL": "PLAINTEXT",
            "DATABASE_URL": f"sqlite:///{Path(scratch) / 'contracts.db'}",
            "VAR_DIR": scratch,
            "OUTBOX_RELAY_ENABLED": "false",
        }
        with _environment(env):
            yield bootstrap.build()


def subscribed_event_types(app: Any) -> list[type[Envelope]]:
    """The event classes the app's consumers handle (its event consumer and its batch
    consumers), in catalog order."""
    runtime = app.state.runtime
    consumer = getattr(runtime, "_consumer", None)
    handled = set(getattr(consumer, "_handlers", {}) or {})
    handled |= {batches.event_type for batches in runtime.batch_consumers}
    return [cls for name, cls in EVENT_TYPES.items() if name in handled]


def subscriptions(service: str) -> list[type[Envelope]]:
    with built_app(service) as app:
        return subscribed_event_types(app)
