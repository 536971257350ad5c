"""What `GET /patients/{id}/timeline` shows: every event about the patient in
time order (ties broken by event id, so the order is stable and the same after a
rebuild), vitals summarised per session, each entry with its phase."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlmodel.ext.asyncio.session import AsyncSession

from kap_shared.events.envelope import as_utc
from kap_shared.events.topics import MONITORING_VITALS
from kap_shared.http.errors import NotFound

from ..adapters import repository as repo
from ..adapters.tables import Entry, Reading, SessionFact
from ..domain.timeline import VITALS_SUMMARY, phase_at, summarize_vitals


@dataclass(frozen=True)
class TimelineQuery:
    phases: frozenset[str] = frozenset()
    types: frozenset[str] = frozenset()
    since: datetime | None = None
    until: datetime | None = None
    offset: int = 0
    limit: int = 200


def _iso(value: datetime) -> str:
    """RFC 3339 in UTC with microseconds always present, so that text order is time order."""
    return as_utc(value).isoformat(timespec="microseconds").replace("+00:00", "Z")


async def patient_sites(session: AsyncSession, patient_id: str) -> set[str]:
    sites = {e.site_id for e in await repo.listed(session, Entry, Entry.patient_id == patient_id)}
    sites |= {
        r.site_id for r in await repo.listed(session, Reading, Reading.patient_id == patient_id)
    }
    if not sites:
        raise NotFound("patient", patient_id)
    return sites


async def all_entries(session: AsyncSession, patient_id: str) -> list[dict[str, Any]]:
    """The whole timeline, unfiltered, in order (see README "Timeline JSON")."""
    entries = await repo.listed(session, Entry, Entry.patient_id == patient_id)
    rows = await repo.listed(session, Reading, Reading.patient_id == patient_id)
    readings = [repo.reading_fact(r) for r in rows]
    session_phase = {
        s.session_id: s.phase
        for s in await repo.listed(session, SessionFact, SessionFact.patient_id == patient_id)
    }
    transitions = [
        (as_utc(e.occurred_at), str(e.data["to_phase"]))
        for e in entries
        if e.event_type == "PhaseAdvanced"
    ]
    items: list[dict[str, Any]] = []
    for entry in entries:
        at = as_utc(entry.occurred_at)
        items.append(
            {
                "entry_id": entry.event_id,
                "event_type": entry.event_type,
                "topic": entry.topic,
                "occurred_at": _iso(at),
                "phase": session_phase.get(entry.session_id or "") or phase_at(at, transitions),
                "session_id": entry.session_id,
                "summary": entry.summary,
                "rule_ids": entry.rule_ids,
                "links": {
                    "event_id": entry.event_id,
                    "causation_id": entry.causation_id,
                    "correlation_id": entry.correlation_id,
                },
                "data": entry.data,
            }
        )
    correlation = {r.event_id: r.correlation_id for r in rows}
    for vitals in summarize_vitals(readings):
        if vitals.first_at is None:  # a summary has at least one reading
            continue
        items.append(
            {
                "entry_id": f"vitals:{vitals.session_id}",
                "event_type": VITALS_SUMMARY,
                "topic": MONITORING_VITALS,
                "occurred_at": _iso(vitals.first_at),
                "phase": session_phase.get(vitals.session_id)
                or phase_at(vitals.first_at, transitions),
                "session_id": vitals.session_id,
                "summary": vitals.summary,
                "rule_ids": [],
                "links": {
                    "event_id": None,
                    "causation_id": None,
                    "correlation_id": correlation[vitals.event_ids[0]],
                    "event_ids": vitals.event_ids,
                },
                "data": vitals.as_data(),
            }
        )
    items.sort(key=lambda item: (item["occurred_at"], item["entry_id"]))
    return items


async def timeline(session: AsyncSession, patient_id: str, query: TimelineQuery) -> dict[str, Any]:
    items = await all_entries(session, patient_id)
    selected = [
        item
        for item in items
        if (not query.phases or item["phase"] in query.phases)
        and (not query.types or item["event_type"] in query.types)
        and (query.since is None or item["occurred_at"] >= _iso(query.since))
        and (query.until is None or item["occurred_at"] < _iso(query.until))
    ]
    page = selected[query.offset : query.offset + query.limit]
    groups: list[dict[str, Any]] = []
    for item in page:
        if not groups or groups[-1]["phase"] != item["phase"]:
            groups.append({"phase": item["phase"], "entry_ids": []})
        groups[-1]["entry_ids"].append(item["entry_id"])
    next_offset = query.offset + len(page)
    return {
        "patient_id": patient_id,
        "total": len(selected),
        "offset": query.offset,
        "limit": query.limit,
        "next_offset": next_offset if next_offset < len(selected) else None,
        "phases": groups,
        "entries": page,
    }
