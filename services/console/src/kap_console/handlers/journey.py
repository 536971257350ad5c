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
TIMELINE_LIMIT = 200  # entries shown; records pages the rest


@dataclass
class Journey:
    patient_id: str
    patient: dict[str, Any] | None
    plan: dict[str, Any] | None
    timeline: list[dict[str, Any]] | None
    timeline_message: str | None
    pmf: list[dict[str, Any]] | None
    timeline_total: int | None = None
    pmf_message: str | None = None
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


def _pmf_message(exc: Exception) -> str:
    if isinstance(exc, ServiceError) and exc.status == 403:
        return "REMS forms are kept for prescribers, nurses and coordinators."
    return _records_message(exc)


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


def _entries(page: Any) -> list[dict[str, Any]] | None:
    """Records' Timeline JSON (`{"entries": [...], "total", "next_offset", ...}`)."""
    if not isinstance(page, dict):
        return None
    return [e for e in page.get("entries") or [] if isinstance(e, dict)]


def _forms(found: Any, patient_id: str) -> list[dict[str, Any]] | None:
    """Records' PMF worklist (`{"forms": [...]}`), this patient's forms by deadline."""
    if not isinstance(found, dict):
        return None
    forms = [f for f in found.get("forms") or [] if f.get("patient_id") == patient_id]
    return sorted(forms, key=lambda f: str(f.get("due_by", "")))


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
        (outcomes_page, _),
        (pmf, pmf_error),
    ) = await asyncio.gather(
        _safe(api.get("scheduling", f"/patients/{patient_id}/plan")),
        _safe(api.get("intake", f"/patients/{patient_id}")),
        _safe(api.get("records", f"/patients/{patient_id}/timeline", limit=TIMELINE_LIMIT)),
        # The trend needs every score, not only the first page of the timeline.
        _safe(
            api.get(
                "records",
                f"/patients/{patient_id}/timeline",
                types="OutcomeRecorded",
                limit=1000,
            )
        ),
        # The worklist of the caller's sites (therapists are not PMF readers: 403, no panel).
        _safe(api.get("records", "/pmf")),
    )
    if isinstance(plan_error, ServiceError) and plan_error.status == 403:
        raise plan_error
    timeline = _entries(timeline_page)
    baselines, points = _baselines(patient), _points(_entries(outcomes_page) or timeline)
    result = Journey(
        patient_id=patient_id,
        patient=patient,
        plan=plan,
        timeline=timeline,
        timeline_message=_records_message(timeline_error) if timeline_error else None,
        timeline_total=timeline_page.get("total") if isinstance(timeline_page, dict) else None,
        pmf=_forms(pmf, patient_id),
        pmf_message=_pmf_message(pmf_error) if pmf_error else None,
        trends=[
            trend(label, baselines.get(key), points.get(key, []))
            for key, label in TREND_INSTRUMENTS
        ],
    )
    if plan_error and not (isinstance(plan_error, ServiceError) and plan_error.status == 404):
        result.warnings.append(f"plan: {plan_error}")
    return result
