"""Each service's AsyncAPI document, as served on `/asyncapi`, written to docs/asyncapi/.

The app is built by the service's bootstrap and never started (`services.built_app`),
so the document is exactly what the running service serves, except the server
address, which is the placeholder `kafka.invalid:9092`.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from .services import PLACEHOLDER_BOOTSTRAP, SERVICES, built_app

__all__ = ["PLACEHOLDER_BOOTSTRAP", "REGENERATE", "SERVICES", "service_asyncapi"]

REGENERATE = "make asyncapi"


def service_asyncapi(service: str) -> dict[str, Any]:
    """Build the service's app without starting it and return its AsyncAPI document."""
    with built_app(service) as app:
        document: dict[str, Any] = app.state.runtime.asyncapi()
    # Round-trip through JSON so the result compares equal to a file read back.
    loaded: dict[str, Any] = json.loads(json.dumps(document))
    return loaded


def asyncapi_path(directory: Path, service: str) -> Path:
    return directory / f"{service}.json"


def dumps(document: dict[str, Any]) -> str:
    return json.dumps(document, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def write_all(directory: Path, services: tuple[str, ...] = SERVICES) -> list[Path]:
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for service in services:
        path = asyncapi_path(directory, service)
        path.write_text(dumps(service_asyncapi(service)), encoding="utf-8")
        written.append(path)
    return written


def stale(directory: Path, services: tuple[str, ...] = SERVICES) -> list[str]:
    """Services whose committed document differs from what their bootstrap builds."""
    out_of_date = []
    for service in services:
        path = asyncapi_path(directory, service)
        committed = json.loads(path.read_text(encoding="utf-8")) if path.exists() else None
        if committed != service_asyncapi(service):
            out_of_date.append(service)
    return out_of_date
