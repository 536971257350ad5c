"""`serve`: what runs before uvicorn takes over the process."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest
import uvicorn
from fastapi import FastAPI

from kap_shared.service import serve as serve_module
from kap_shared.service.serve import serve
from kap_shared.settings import ServiceSettings


@pytest.fixture
def no_frozen_objects() -> Iterator[None]:
    gc.unfreeze()
    yield
    gc.unfreeze()  # the rest of the suite collects as usual


def test_serve_freezes_the_objects_startup_left_before_uvicorn_runs(
    monkeypatch: pytest.MonkeyPatch, no_frozen_objects: None
) -> None:
    """The app's startup objects are out of the collector's reach by the time requests
    are served: a full collection no longer walks them (a long event-loop stall)."""
    seen: dict[str, int] = {}

    def run(_server: uvicorn.Server) -> None:
        seen["frozen"] = gc.get_freeze_count()
        seen["tracked"] = len(gc.get_objects())

    monkeypatch.setattr(uvicorn.Server, "run", run)
    # Logging is process-wide: configured here it would stay at WARNING (and on this
    # test's captured stdout) for every later test in the process.
    monkeypatch.setattr(serve_module, "configure_service_logging", lambda *_, **__: None)
    before = len(gc.get_objects())
    serve(ServiceSettings(log_level="WARNING"), lambda _settings: FastAPI())
    assert seen["frozen"] >= before // 2
    assert seen["tracked"] < seen["frozen"]
