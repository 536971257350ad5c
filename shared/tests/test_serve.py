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


def test_serve_runs_uvicorn_on_the_c_loop_and_parser_without_an_access_log(
    monkeypatch: pytest.MonkeyPatch, no_frozen_objects: None
) -> None:
    """Every service (and bench/http_floor.py, the HTTP benchmark's baseline) runs uvicorn
    as `server_config` sets it: uvloop and httptools (less CPU a request than asyncio's
    loop and h11, issue 13), structlog's logging rather than uvicorn's access log."""
    configs: list[uvicorn.Config] = []
    monkeypatch.setattr(uvicorn.Server, "run", lambda server: configs.append(server.config))
    monkeypatch.setattr(serve_module, "configure_service_logging", lambda *_, **__: None)
    serve(ServiceSettings(log_level="WARNING", http_port=8123), lambda _settings: FastAPI())
    (config,) = configs
    assert (config.loop, config.http) == ("uvloop", "httptools")
    assert config.port == 8123
    assert config.access_log is False
    assert config.log_config is None
