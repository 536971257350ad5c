"""Raising and resolving VitalsAlerts: the row and its event, written together (and
closing a safety concern, whose resolution columns are an alert's)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Protocol

from opentelemetry.trace import SpanKind

from kap_shared.events import ObservationDue, VitalsAlert, VitalsAlertResolved, new_id
from kap_shared.events.enums import Severity
from kap_shared.events.envelope import Envelope, Subject, scope_fields
from kap_shared.events.envelope import envelope_fields as shared_envelope_fields
from kap_shared.events.monitoring import (
    ObservationDueData,
    VitalsAlertData,
    VitalsAlertResolvedData,
)
from kap_shared.messaging.unit_of_work import UnitOfWork
from kap_shared.tracing import traced

from ..adapters.tables import OPEN, RESOLVED, Alert, SafetyConcern

PRODUCER = "monitoring"


class SessionLike(Subject, Protocol):
    """What an event about a session needs to know of it (an ORM row or a SessionRow):
    the envelope's subject, and the session."""

    @property
    def session_id(self) -> str: ...


# Who resolved an alert when no person did.
BY_RULES = "rules"
# Resolutions (coded; a prescriber's free-text note stays in the alert row).
VALUES_IN_RANGE = "values_in_range"
PREDOSE_DECISION = "predose_decision"
DISCHARGED = "discharged"


def envelope_fields(row: SessionLike, causation_id: str | None) -> dict[str, Any]:
    """The envelope of an event about `row`'s session: its patient, site and episode."""
    return shared_envelope_fields(
        row, producer=PRODUCER, causation_id=causation_id, correlation_fallback=row.session_id
    )


def publish(uow: UnitOfWork, event: Envelope, traceparent: str | None = None) -> None:
    """Publish through the outbox; in the trace of `traceparent` when one is given
    (a device reading's own trace, inside a batch that spans many traces)."""
    if traceparent is None:
        uow.publish(event)
        return
    with traced(f"{event.event_type} raise", traceparent, SpanKind.INTERNAL):
        uow.publish(event)


def raise_alert(
    uow: UnitOfWork,
    row: SessionLike,
    *,
    rule_id: str,
    severity: Severity,
    metric: str,
    value: float,
    threshold: float,
    message: str,
    triggered_at: datetime,
    reading_id: str | None,
    causation_id: str | None,
    now: datetime,
    traceparent: str | None = None,
) -> Alert:
    data = VitalsAlertData(
        alert_id=new_id(),
        session_id=row.session_id,
        severity=severity,
        rule_id=rule_id,
        metric=metric,
        value=value,
        threshold=threshold,
        message=message,
    )
    event = VitalsAlert(**envelope_fields(row, causation_id), occurred_at=now, data=data)
    alert = Alert(
        **data.model_dump(mode="json"),  # the event's fields, the severity as its code
        **scope_fields(row),  # the session's patient and site
        status=OPEN,
        raised_at=now,
        triggered_at=triggered_at,
        triggering_reading_id=reading_id,
        event_id=str(event.event_id),
    )
    uow.session.add(alert)
    publish(uow, event, traceparent)
    return alert


def mark_resolved(
    uow: UnitOfWork,
    item: Alert | SafetyConcern,
    *,
    now: datetime,
    by: str,
    resolution: str,
    note: str | None,
) -> None:
    """Close an alert or a safety concern (the same resolution columns): when, by whom,
    the coded resolution and the resolver's own note, which stays in monitoring."""
    item.status = RESOLVED
    item.resolved_at = now
    item.resolved_by = by
    item.resolution = resolution
    item.resolution_note = note
    uow.session.add(item)


def resolve_alert(
    uow: UnitOfWork,
    row: SessionLike,
    alert: Alert,
    *,
    now: datetime,
    by: str,
    resolution: str,
    note: str | None = None,
    causation_id: str | None = None,
    traceparent: str | None = None,
) -> None:
    mark_resolved(uow, alert, now=now, by=by, resolution=resolution, note=note)
    publish(
        uow,
        VitalsAlertResolved(
            **envelope_fields(row, causation_id or alert.event_id),
            occurred_at=now,
            data=VitalsAlertResolvedData(
                alert_id=alert.alert_id, session_id=row.session_id, resolved_at=now
            ),
        ),
        traceparent,
    )


def observation_due(
    uow: UnitOfWork,
    row: SessionLike,
    *,
    kind: str,
    rule_id: str,
    due_at: datetime,
    now: datetime,
    causation_id: str | None = None,
    traceparent: str | None = None,
) -> None:
    publish(
        uow,
        ObservationDue(
            **envelope_fields(row, causation_id),
            occurred_at=now,
            data=ObservationDueData(
                session_id=row.session_id, kind=kind, due_at=due_at, rule_id=rule_id
            ),
        ),
        traceparent,
    )
