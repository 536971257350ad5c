"""HTTP API (CONTRACT section 4). The dosing, vitals, discharge and measures
endpoints arrive with the safety loop (issue 4); until then monitoring
serves its operational endpoints and keeps its view current from events."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(tags=["monitoring"])
