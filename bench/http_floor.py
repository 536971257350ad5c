"""The HTTP benchmark's floor: the same two requests answered by FastAPI alone.

`bench/http_load.py` runs this process first, under the same load generator, targets
and rate as monitoring, and reports monitoring against it: what uvicorn (uvloop,
httptools, the services' own settings: `kap_shared.service.serve.server_config`),
FastAPI's routing, the contract's request model and the response's serialization cost
on this machine in this hour, with nothing of the platform's (no middleware, no
token, no database, no outbox). Its answers are monitoring's own, captured once before
the load: `POST /sessions/{id}/vitals` validates the body as `RecordVitals` and
returns a recorded `VitalsResult`; `GET /sessions/{id}` returns a recorded
`SessionView`, both through their response models, as monitoring's routes do.

    python bench/http_floor.py --port 8099 --answers answers.json
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import uvicorn
from fastapi import FastAPI

from kap_monitoring.domain.commands import RecordVitals
from kap_monitoring.handlers.views import SessionView, VitalsResult
from kap_shared.service.serve import server_config, settle_startup_objects


def floor_app(answers: dict[str, Any]) -> FastAPI:
    """The floor's app; `answers`: monitoring's JSON answers to a reading
    (`post_vitals`, a VitalsResult) and to a read (`get_session`, a SessionView)."""
    posted = VitalsResult.model_validate(answers["post_vitals"])
    session = SessionView.model_validate(answers["get_session"])
    app = FastAPI(title="kap-bench-http-floor", docs_url=None, redoc_url=None)

    @app.post("/sessions/{session_id}/vitals", response_model=VitalsResult, status_code=201)
    async def record_vitals(session_id: str, cmd: RecordVitals) -> VitalsResult:
        return posted

    @app.get("/sessions/{session_id}", response_model=SessionView)
    async def get_session(session_id: str) -> SessionView:
        return session

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    return app


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument(
        "--answers",
        type=Path,
        required=True,
        help='JSON {"post_vitals": <a VitalsResult>, "get_session": <a SessionView>}',
    )
    args = parser.parse_args(argv)
    app = floor_app(json.loads(args.answers.read_text()))
    settle_startup_objects()  # as every service does before serving
    uvicorn.Server(server_config(app, "127.0.0.1", args.port)).run()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
