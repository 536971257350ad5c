"""Scheduling's state as the rules see it: plain, immutable values. No I/O.

The handlers load rows, turn them into these values and hand them to the pure
rule functions (`booking`, `lifecycle`, `guidance`), so every rule can be tested
on its own with exact times on both sides of each threshold.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from enum import StrEnum
from zoneinfo import ZoneInfo

from kap_shared.events.enums import ConsentScope, Phase, Role, Route, Severity
from kap_shared.events.enums import SessionStatus as SessionStatus  # the contract's, re-exported

Clock = Callable[[], datetime]

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
WEEKDAY_NAMES = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")


class PlanStatus(StrEnum):
    AWAITING_CARE_TEAM = "awaiting_care_team"
    ACTIVE = "active"
    SUSPENDED = "suspended"


class HoldStatus(StrEnum):
    OPEN = "open"
    CLEARED = "cleared"


class DeadlineStatus(StrEnum):
    OPEN = "open"  # integration due, not yet completed
    MET = "met"  # integration completed in time
    OVERDUE = "overdue"  # IntegrationOverdue emitted
    MET_LATE = "met_late"  # integration completed after IntegrationOverdue


UNMET_DEADLINES = (DeadlineStatus.OPEN, DeadlineStatus.OVERDUE)


@dataclass(frozen=True)
class Violation:
    """A rule forbids the action: its id and a reason a coordinator understands."""

    rule_id: str
    message: str


@dataclass(frozen=True)
class SiteInfo:
    site_id: str
    timezone: str = "UTC"
    rems_certified_until: date | None = None

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    def local(self, moment: datetime) -> datetime:
        return moment.astimezone(self.zone)

    def describe(self, moment: datetime) -> str:
        """`Mon 30 Nov 2026 09:00 America/New_York`: how a coordinator reads a time."""
        return f"{self.local(moment):%a %d %b %Y %H:%M} {self.timezone}"

    def day(self, moment: datetime) -> str:
        return f"{self.local(moment):%Y-%m-%d}"


@dataclass(frozen=True)
class StaffMember:
    clinician_id: str
    role: Role
    sites: tuple[str, ...]
    # Weekday ("mon".."sun") -> (start, end) in the site's local time. Empty means the
    # clinician's hours are not configured, and SCH-HOURS-1 does not restrict them.
    hours: Mapping[str, tuple[time, time]] = field(default_factory=dict)


@dataclass(frozen=True)
class PlanInfo:
    plan_id: str
    patient_id: str
    site_id: str
    status: PlanStatus
    route: Route
    protocol: str
    planned_dosing_sessions: int
    phase: Phase | None
    prescriber_id: str | None
    therapist_id: str | None
    suspended_at: datetime | None = None
    # SPR-SCH-1: when the prescriber's "evaluate benefit" task came due, and after how
    # many completed dosing sessions.
    induction_review_due_at: datetime | None = None
    induction_review_sessions: int | None = None

    @property
    def esketamine(self) -> bool:
        return self.route is Route.INTRANASAL_ESKETAMINE


@dataclass(frozen=True)
class Slot:
    """A booked session (any status)."""

    session_id: str
    plan_id: str
    patient_id: str
    phase: Phase
    sequence: int
    starts_at: datetime
    ends_at: datetime
    room_id: str
    therapist_id: str
    prescriber_id: str | None
    status: SessionStatus
    completed_at: datetime | None = None
    discharge_cleared_at: datetime | None = None
    # The plan's route and the session's site, where the rule needs them (chair
    # block SPR-SCH-4, shared prescriber supervision SPR-CERT-2).
    route: Route | None = None
    site_id: str | None = None
    # False when the therapist is named but not at the chair (esketamine dosing, KAP-3).
    therapist_present: bool = True

    @property
    def esketamine_dosing(self) -> bool:
        return self.route is Route.INTRANASAL_ESKETAMINE and self.phase is Phase.DOSING

    @property
    def live(self) -> bool:
        """Not cancelled: it holds its patient, clinicians and room."""
        return self.status is not SessionStatus.CANCELLED

    @property
    def pending(self) -> bool:
        """Booked and not yet completed (scheduled or checked in)."""
        return self.status in (SessionStatus.SCHEDULED, SessionStatus.CHECKED_IN)

    def overlaps(self, starts_at: datetime, ends_at: datetime) -> bool:
        # Half-open intervals: a session ending at 10:00 and one starting at 10:00 do not clash.
        return self.starts_at < ends_at and starts_at < self.ends_at

    @property
    def clinicians(self) -> set[str]:
        held = {self.therapist_id} if self.therapist_present else set()
        return held | ({self.prescriber_id} if self.prescriber_id else set())


@dataclass(frozen=True)
class Hold:
    hold_id: str
    source: str
    value: float
    severity: Severity
    raised_at: datetime


@dataclass(frozen=True)
class Deadline:
    dosing_session_id: str
    due_by: datetime
    therapist_id: str
    status: DeadlineStatus


Consents = Mapping[ConsentScope, bool]


@dataclass(frozen=True)
class Attestation:
    """What the patient reports at check-in (SPR-PRE-1/2/8, KET-PRE-1/3)."""

    last_food_at: datetime | None = None
    last_liquid_at: datetime | None = None
    transport_arranged: bool | None = None


def minutes(delta: timedelta) -> float:
    return delta.total_seconds() / 60


def format_minutes(total: float) -> str:
    """`2 h`, `1 h 59 min`, `30 min`."""
    whole = int(total)
    hours, rest = divmod(whole, 60)
    if hours and rest:
        return f"{hours} h {rest} min"
    if hours:
        return f"{hours} h"
    return f"{rest} min"


def format_value(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else f"{value:g}"
