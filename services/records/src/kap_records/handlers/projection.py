"""Projecting every topic into the record (consumer group `records`).

Every handler is idempotent by event id (the inbox guards the live consumer; a
rebuild replays into the same rows), readings by their `reading_id` too, so the
same topics always give the same record, whatever order the topics were read in:
phases and summaries of vitals are derived when the record is read, not when an
event arrives.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from sqlalchemy import inspect as sa_inspect
from sqlmodel import SQLModel
from sqlmodel.ext.asyncio.session import AsyncSession

from kap_shared import events
from kap_shared.events.enums import Agent, SessionStatus
from kap_shared.events.envelope import scope_fields
from kap_shared.events.monitoring import VitalsReading
from kap_shared.events.vitals_codec import VitalsEvent
from kap_shared.logging import get_logger
from kap_shared.messaging.unit_of_work import UnitOfWork
from kap_shared.messaging.upserts import insert_on_conflict
from kap_shared.projections import carried, column_value
from kap_shared.rules import SiteRules

from ..adapters.tables import Entry, PlanFact, PmfForm, Reading, SessionFact
from ..domain.rules import RecordsRules
from ..domain.timeline import coded_data, rule_ids_of, session_of, summarize
from .pmf import open_pmf

log = get_logger(__name__)

Handler = Callable[[Any, UnitOfWork], Awaitable[None]]
SESSION_STATUS = {
    "SessionCancelled": SessionStatus.CANCELLED,
    "SessionCheckedIn": SessionStatus.CHECKED_IN,
    "SessionCompleted": SessionStatus.COMPLETED,
}


def projector(site_rules: SiteRules[RecordsRules], *, live: bool = True) -> Handler:
    """The one handler for every event type. `live=False` (a rebuild) only projects:
    it opens no form and publishes nothing (the forms' own events are replayed)."""

    async def handle(event: events.Envelope, uow: UnitOfWork) -> None:
        if isinstance(event, events.VitalsRecorded):
            await _reading(event, uow)
            return
        await _entry(event, uow)
        await _facts(event, uow)
        if (
            live
            and isinstance(event, events.DoseAdministered)
            and event.data.agent is Agent.ESKETAMINE
        ):
            await open_pmf(uow, event, site_rules.for_site(event.site_id))

    return handle


async def _add_once(session: AsyncSession, row: SQLModel) -> None:
    """Insert `row` unless its primary key is there already: a redelivered or replayed
    event finds the row it made the first time."""
    key = sa_inspect(type(row)).primary_key_from_instance(row)
    if await session.get(type(row), tuple(key)) is None:
        session.add(row)


async def _update(session: AsyncSession, table: type[SQLModel], key: str, **values: Any) -> None:
    """Set `values` on the row at `key`, if records has it (its creating event may be
    on a topic not read yet in a rebuild; the row then arrives with the values of its own)."""
    row = await session.get(table, key)
    if row is not None:
        for name, value in values.items():
            setattr(row, name, value)
        session.add(row)


# What a reading measured (the contract's `VitalsReading`), kept as one JSON value; the
# session, the reading's id and its time have columns of their own.
MEASURED = tuple(VitalsReading.model_fields)


def reading_row(event: VitalsEvent) -> dict[str, Any]:
    """The `vitals_readings` row of a reading: what it measured, as sent (unset metrics
    left out). Read by attribute, so the contract model (a rebuild) and the fast
    decoder's struct (the live batches) give the same row without a dump of either."""
    data = event.data
    measured = {
        name: column_value(value) for name in MEASURED if (value := getattr(data, name)) is not None
    }
    return {
        **carried(Reading, event),
        "event_id": str(event.event_id),
        "correlation_id": event.correlation_id,
        "values": measured,
    }


async def _reading(event: events.VitalsRecorded, uow: UnitOfWork) -> None:
    await store_readings(uow, [event])


_READINGS = Reading.__table__  # type: ignore[attr-defined]


async def store_readings(uow: UnitOfWork, readings: Sequence[VitalsEvent]) -> int:
    """A batch of readings in one statement (the live consumer: `entrypoints.vitals_batch`;
    a rebuild, one at a time). A reading filed already is left as it is: the same event
    id (a redelivered batch) or the same `reading_id` (a re-sent reading, or one reused
    in another session, which monitoring rejects). Returns how many were new."""
    if not readings:
        return 0
    session = uow.session
    # No conflict target: either unique key (event_id, reading_id) makes a repeat.
    statement = (
        insert_on_conflict(session, _READINGS)
        .on_conflict_do_nothing()
        .returning(_READINGS.c.event_id)
    )
    connection = await session.connection()
    result = await connection.execute(statement, [reading_row(event) for event in readings])
    return len(result.all())


async def _entry(event: events.Envelope, uow: UnitOfWork) -> None:
    data = coded_data(event.data.model_dump(mode="json", by_alias=True))
    await _add_once(
        uow.session,
        Entry(
            event_id=str(event.event_id),
            **scope_fields(event),
            event_type=event.event_type,
            topic=event.topic,
            occurred_at=event.occurred_at,
            session_id=session_of(data),
            correlation_id=event.correlation_id,
            causation_id=event.causation_id,
            rule_ids=rule_ids_of(event.event_type, data),
            summary=summarize(event.event_type, data),
            data=data,
        ),
    )


async def _facts(event: events.Envelope, uow: UnitOfWork) -> None:
    """What records needs to know of plans, sessions and forms."""
    session = uow.session
    if isinstance(event, events.TreatmentPlanCreated):
        await _add_once(session, PlanFact(**carried(PlanFact, event), created_at=event.occurred_at))
    elif isinstance(event, events.SessionScheduled):
        await _add_once(session, SessionFact(**carried(SessionFact, event)))
    elif isinstance(event, events.SessionRescheduled):
        moved = event.data
        await _update(
            session, SessionFact, moved.session_id, starts_at=moved.starts_at, ends_at=moved.ends_at
        )
    elif isinstance(
        event, events.SessionCancelled | events.SessionCheckedIn | events.SessionCompleted
    ):
        status = SESSION_STATUS[event.event_type]
        await _update(session, SessionFact, event.data.session_id, status=status)
    elif isinstance(event, events.PmfOpened):
        # Records' own event: restores a form after a loss of its database.
        await _add_once(
            session,
            PmfForm(
                pmf_id=event.data.pmf_id,
                session_id=event.data.session_id,
                **scope_fields(event),
                correlation_id=event.correlation_id,
                opened_at=event.occurred_at,
                session_at=event.occurred_at,
                due_by=event.data.due_by,
            ),
        )
    elif isinstance(event, events.PmfSubmitted):
        form = await session.get(PmfForm, event.data.pmf_id)
        if form is not None and form.submitted_at is None:
            form.submitted_at = event.data.submitted_at
            form.submitted_by = event.data.submitted_by
            form.confirmation = event.data.confirmation
            session.add(form)
