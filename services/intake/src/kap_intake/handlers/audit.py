"""The PHI access trail: append a record; search it. Nothing here updates or deletes
a record (and the database refuses it)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from kap_shared.messaging.idempotency import deferring_scope

from ..adapters.tables import AuditRecord


async def append(sessions: async_sessionmaker[AsyncSession], *records: AuditRecord) -> None:
    """In a transaction of its own: refusals are recorded even though the request's
    own transaction was rolled back. In a keyed request whose effect is held until the
    response is stored (Idempotency-Key), the records join that transaction instead:
    effect, response and records are durable together."""
    scope = deferring_scope()
    if scope is not None and all(scope.join(record) for record in records):
        return
    async with sessions() as session:
        session.add_all(records)
        await session.commit()


@dataclass(frozen=True)
class AuditQuery:
    patient_id: str | None = None
    actor: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    sites: tuple[str, ...] | None = None  # None: every site
    limit: int = 100
    offset: int = 0


async def search(session: AsyncSession, query: AuditQuery) -> list[AuditRecord]:
    """Newest first; `since` inclusive, `until` exclusive."""
    statement = select(AuditRecord)
    if query.patient_id is not None:
        statement = statement.where(AuditRecord.patient_id == query.patient_id)
    if query.actor is not None:
        statement = statement.where(AuditRecord.actor == query.actor)
    if query.sites is not None:
        statement = statement.where(col(AuditRecord.site_id).in_(query.sites))
    if query.since is not None:
        statement = statement.where(col(AuditRecord.at) >= query.since)
    if query.until is not None:
        statement = statement.where(col(AuditRecord.at) < query.until)
    statement = (
        statement.order_by(col(AuditRecord.at).desc(), col(AuditRecord.audit_id).desc())
        .offset(query.offset)
        .limit(query.limit)
    )
    return list(await session.exec(statement))
