"""The patient's journey: plan and phase progress (scheduling), baseline and
identity (intake, audited), the timeline and PMF status (records, optional),
PHQ-9 / GAD-7 trend against the baseline."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

from kap_shared.auth import Principal

from ..adapters.services import ServiceApi, ServiceError, ServiceUnavailable
from ..domain.outcomes import Trend, trend

# Instrument codes as intake scores them and OutcomeRecorded names them.
TREND_INSTRUMENTS = (("PHQ-9", "PHQ-9"), ("GAD-7", "GAD-7"))


@dataclass
class Journey:
    patient_id: str
    patient: dict[str, Any] | None
    plan: dict[str, Any] | None
    timeline: list[dict[str, Any]] | None
    timeline_message: str | None
    pmf: list[dict[str, Any]] | None
    trends: list[Trend] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


def _records_message(exc: Exception) -> str:
    if isinstance(exc, ServiceUnavailable) and exc.reason == "not configured":
        return "The care record (records service) is not configured for this console."
    if isinstance(exc, ServiceUnavailable):
        return "The care record (records service) cannot be reached right now."
    if isinstance(exc, ServiceError):
        return f"The care record answered {exc.status} {exc.code}: {exc.message}"
    return "The care record is unavailable."


async def _safe(coro: Any) -> tuple[Any, Exception | None]:
    try:
        return await coro, None
    except (ServiceError, ServiceUnavailable) as exc:
        return None, exc


def _baselines(patient: dict[str, Any] | None) -> dict[str, int]:
    found: dict[str, int] = {}
    for screening in (patient or {}).get("screenings", []):
        for instrument, score in (screening.get("scores") or {}).items():
            if isinstance(score, dict) and "total" in score:
                found[instrument] = int(score["total"])
    return found


def _points(timeline: list[dict[str, Any]] | None) -> dict[str, list[tuple[str, int]]]:
    points: dict[str, list[tuple[str, int]]] = {}
    for entry in timeline or []:
        if entry.get("event_type") != "OutcomeRecorded":
            continue
        data = entry.get("data") or {}
        instrument, total = data.get("instrument"), data.get("total")
        when = entry.get("occurred_at", "")
        if isinstance(instrument, str) and isinstance(total, int | float):
            points.setdefault(instrument, []).append((str(when)[:10], int(total)))
    return points


async def journey(api: ServiceApi, principal: Principal, patient_id: str) -> Journey:
    (
        (plan, plan_error),
        (patient, _),
        (timeline_page, timeline_error),
        (pmf, _),
    ) = await asyncio.gather(
        _safe(api.get("scheduling", f"/patients/{patient_id}/plan")),
        _safe(api.get("intake", f"/patients/{patient_id}")),
        _safe(api.get("records", f"/patients/{patient_id}/timeline")),
        _safe(api.get("records", "/pmf", patient_id=patient_id)),
    )
    if isinstance(plan_error, ServiceError) and plan_error.status == 403:
        raise plan_error
    timeline: list[dict[str, Any]] | None = None
    if isinstance(timeline_page, dict):
        timeline = list(timeline_page.get("items") or timeline_page.get("events") or [])
    elif isinstance(timeline_page, list):
        timeline = timeline_page
    baselines, points = _baselines(patient), _points(timeline)
    result = Journey(
        patient_id=patient_id,
        patient=patient,
        plan=plan,
        timeline=timeline,
        timeline_message=_records_message(timeline_error) if timeline_error else None,
        pmf=pmf if isinstance(pmf, list) else (pmf or {}).get("items") if pmf else None,
        trends=[
            trend(label, baselines.get(key), points.get(key, []))
            for key, label in TREND_INSTRUMENTS
        ],
    )
    if plan_error and not (isinstance(plan_error, ServiceError) and plan_error.status == 404):
        result.warnings.append(f"plan: {plan_error}")
    return result
