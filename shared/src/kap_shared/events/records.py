"""Events records publishes on `kap.records.events.v1` (CONTRACT 6.2): the REMS
Patient Monitoring Form's life cycle (SPR-PMF-1, clinical rulebook 1.5)."""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import AwareDatetime

from .envelope import Envelope, Payload
from .topics import RECORDS_EVENTS


class PmfOpenedData(Payload):
    pmf_id: str
    session_id: str
    due_by: AwareDatetime


class PmfReminderData(Payload):
    pmf_id: str
    session_id: str
    due_by: AwareDatetime
    days_left: int
    missing_fields: list[str]


class PmfOverdueData(Payload):
    pmf_id: str
    session_id: str
    due_by: AwareDatetime
    missing_fields: list[str]


class PmfSubmittedData(Payload):
    pmf_id: str
    session_id: str
    submitted_at: AwareDatetime
    submitted_by: str
    confirmation: str | None = None


class PmfOpened(Envelope):
    topic: ClassVar[str] = RECORDS_EVENTS
    event_type: Literal["PmfOpened"] = "PmfOpened"
    data: PmfOpenedData


class PmfReminder(Envelope):
    topic: ClassVar[str] = RECORDS_EVENTS
    event_type: Literal["PmfReminder"] = "PmfReminder"
    data: PmfReminderData


class PmfOverdue(Envelope):
    topic: ClassVar[str] = RECORDS_EVENTS
    event_type: Literal["PmfOverdue"] = "PmfOverdue"
    data: PmfOverdueData


class PmfSubmitted(Envelope):
    topic: ClassVar[str] = RECORDS_EVENTS
    event_type: Literal["PmfSubmitted"] = "PmfSubmitted"
    data: PmfSubmittedData
