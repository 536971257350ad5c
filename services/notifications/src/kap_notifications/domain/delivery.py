"""From a message to deliveries: per recipient, which channels, and when.

Pure rules, no I/O:

* **Channels.** The routing table's channels are the default. A recipient's
  preferences for a priority *replace* them for routine messages and are
  *added* to them for urgent, asap and stat (a stat alert always pages by SMS).
  In-app is always included: the inbox is the record of what was sent.
  An external channel needs its contact point: no phone, no SMS; no email
  address, no email.
* **Quiet hours** (a recipient's local `start`-`end` window, `start` inclusive,
  `end` exclusive, may span midnight): a *routine* message is still put in the
  inbox at once, but its email/SMS is deferred until the quiet hours end.
  Urgent, asap and stat messages always go through at once.
* **Retries.** A failed external delivery is retried with exponential backoff
  (`base * 2^(attempt-1)`, capped) up to a bounded number of attempts.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from kap_shared.events.enums import Channel
from kap_shared.retry import backoff_seconds

from .routing import Message, Priority

CHANNEL_ORDER = (Channel.IN_APP, Channel.SMS, Channel.EMAIL)


@dataclass(frozen=True)
class QuietHours:
    start: time
    end: time
    timezone: str

    def __post_init__(self) -> None:
        if self.start == self.end:
            raise ValueError("quiet hours start and end must differ")
        ZoneInfo(self.timezone)  # raises for an unknown zone

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    def contains(self, at: datetime) -> bool:
        """Is `at` (aware) inside the quiet hours, in the recipient's time zone?"""
        local = at.astimezone(self.zone).time().replace(tzinfo=None)
        if self.start < self.end:
            return self.start <= local < self.end
        return local >= self.start or local < self.end  # spans midnight

    def end_after(self, at: datetime) -> datetime:
        """When the quiet period containing `at` ends (aware, UTC-comparable)."""
        local = at.astimezone(self.zone)
        day: date = local.date()
        if self.start > self.end and local.time().replace(tzinfo=None) >= self.start:
            day += timedelta(days=1)  # evening part of a window spanning midnight
        return datetime.combine(day, self.end, tzinfo=self.zone)


@dataclass(frozen=True)
class Profile:
    """What routing may know about a recipient (never the contact details)."""

    clinician_id: str
    has_email: bool = False
    has_phone: bool = False
    channels: Mapping[Priority, tuple[Channel, ...]] = field(default_factory=dict)
    quiet_hours: QuietHours | None = None


@dataclass(frozen=True)
class Delivery:
    recipient_id: str
    channel: Channel
    priority: Priority
    # External channels only: not before this time (quiet hours), else at once.
    not_before: datetime | None = None


@dataclass(frozen=True)
class Skipped:
    recipient_id: str
    channel: Channel
    reason: str


def choose_channels(
    priority: Priority, defaults: tuple[Channel, ...], profile: Profile | None
) -> tuple[Channel, ...]:
    preferred = profile.channels.get(priority) if profile else None
    if preferred is None:
        chosen = set(defaults)
    elif priority is Priority.ROUTINE:
        chosen = set(preferred)
    else:
        chosen = set(defaults) | set(preferred)
    chosen.add(Channel.IN_APP)
    return tuple(c for c in CHANNEL_ORDER if c in chosen)


def plan(
    message: Message,
    profiles: Mapping[str, Profile],
    now: datetime,
    recipients: tuple[str, ...] | None = None,
) -> tuple[list[Delivery], list[Skipped]]:
    """The deliveries of `message` to its recipients (or `recipients`), and what was skipped."""
    deliveries: list[Delivery] = []
    skipped: list[Skipped] = []
    for recipient_id in recipients if recipients is not None else message.recipients:
        profile = profiles.get(recipient_id)
        for channel in choose_channels(message.priority, message.channels, profile):
            if channel is Channel.SMS and not (profile and profile.has_phone):
                skipped.append(Skipped(recipient_id, channel, "no_phone"))
                continue
            if channel is Channel.EMAIL and not (profile and profile.has_email):
                skipped.append(Skipped(recipient_id, channel, "no_email"))
                continue
            not_before = None
            if channel is not Channel.IN_APP:
                not_before = deferred_until(message.priority, profile, now)
            deliveries.append(Delivery(recipient_id, channel, message.priority, not_before))
    return deliveries, skipped


def deferred_until(priority: Priority, profile: Profile | None, now: datetime) -> datetime | None:
    """End of the recipient's quiet hours for a routine message sent now; else None."""
    if priority is not Priority.ROUTINE or profile is None or profile.quiet_hours is None:
        return None
    quiet = profile.quiet_hours
    return quiet.end_after(now) if quiet.contains(now) else None


@dataclass(frozen=True)
class RetryPolicy:
    max_attempts: int = 5
    base_seconds: float = 2.0
    max_seconds: float = 300.0

    def backoff(self, attempt: int) -> timedelta:
        """Wait after failed attempt number `attempt` (1-based)."""
        return timedelta(seconds=backoff_seconds(attempt, self.base_seconds, self.max_seconds))

    def exhausted(self, attempts: int) -> bool:
        return attempts >= self.max_attempts
