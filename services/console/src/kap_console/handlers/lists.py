"""The inbox and the coordinator's worklist."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

from ..adapters.services import ServiceApi, ServiceError, ServiceUnavailable


async def inbox(api: ServiceApi) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = await api.get("notifications", "/inbox", limit=100)
    return items


@dataclass
class Worklist:
    pmf: list[dict[str, Any]] | None
    pmf_message: str | None
    overdue_integration: list[dict[str, Any]]
    escalations: list[dict[str, Any]]
    warnings: list[str] = field(default_factory=list)


async def coordinator(api: ServiceApi, site_id: str) -> Worklist:
    async def pmf() -> tuple[list[dict[str, Any]] | None, str | None]:
        try:
            found = await api.get("records", "/pmf", site_id=site_id)
        except ServiceUnavailable as exc:
            reason = "is not configured" if exc.reason == "not configured" else "cannot be reached"
            return None, f"The PMF worklist (records service) {reason}."
        except ServiceError as exc:
            return None, f"The PMF worklist answered {exc.status} {exc.code}: {exc.message}"
        # Records' PMF JSON: {"forms": [...]}, each form with due_by, status, missing_fields.
        rows = list((found or {}).get("forms") or []) if isinstance(found, dict) else []
        return sorted(rows, key=lambda r: str(r.get("due_by", ""))), None

    (rows, message), alerts = await asyncio.gather(
        pmf(), api.get("notifications", "/alerts", site_id=site_id, status="open")
    )
    return Worklist(
        pmf=rows,
        pmf_message=message,
        overdue_integration=[a for a in alerts if a.get("event_type") == "IntegrationOverdue"],
        escalations=[a for a in alerts if a.get("event_type") != "IntegrationOverdue"],
    )
