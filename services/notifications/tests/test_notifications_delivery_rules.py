"""Channel choice, quiet hours and retry backoff (pure)."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta

import pytest

from kap_notifications.domain.delivery import (
    Profile,
    QuietHours,
    RetryPolicy,
    choose_channels,
    deferred_until,
    plan,
)
from kap_notifications.domain.routing import RULES, Message, Priority
from kap_shared.events.enums import Channel

SMS, IN_APP, EMAIL = Channel.SMS, Channel.IN_APP, Channel.EMAIL
NIGHT = QuietHours(time(21, 0), time(7, 0), "America/New_York")
LUNCH = QuietHours(time(12, 0), time(13, 0), "Europe/Berlin")


def ny(hour: int, minute: int = 0, day: int = 15) -> datetime:
    """A January 2030 New York wall-clock time (UTC-5) as an aware UTC datetime."""
    return datetime(2030, 1, day, hour, minute, tzinfo=UTC) + timedelta(hours=5)


# -- quiet hours -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("at", "quiet"),
    [
        (ny(20, 59), False),
        (ny(21, 0), True),  # start is inclusive
        (ny(23, 59), True),
        (ny(0, 0), True),
        (ny(6, 59), True),
        (ny(7, 0), False),  # end is exclusive
        (ny(12, 0), False),
    ],
)
def test_quiet_hours_spanning_midnight_boundaries(at: datetime, quiet: bool) -> None:
    assert NIGHT.contains(at) is quiet


@pytest.mark.parametrize(
    ("hour", "minute", "quiet"), [(11, 59, False), (12, 0, True), (12, 59, True), (13, 0, False)]
)
def test_quiet_hours_within_one_day(hour: int, minute: int, quiet: bool) -> None:
    at = datetime(2030, 1, 15, hour, minute, tzinfo=UTC) - timedelta(hours=1)  # Berlin = UTC+1
    assert LUNCH.contains(at) is quiet


def test_quiet_hours_end_is_the_next_local_end_time() -> None:
    # Evening part: ends tomorrow at 07:00 local.
    assert NIGHT.end_after(ny(22, 30)) == ny(7, 0, day=16)
    # Morning part: ends today at 07:00 local.
    assert NIGHT.end_after(ny(5, 0, day=16)) == ny(7, 0, day=16)


def test_quiet_hours_follow_daylight_saving_time() -> None:
    # 2030-03-10: New York moves from UTC-5 to UTC-4 at 02:00.
    before = datetime(2030, 3, 10, 4, 0, tzinfo=UTC)  # 23:00 EST on the 9th
    end = NIGHT.end_after(before)
    assert end == datetime(2030, 3, 10, 11, 0, tzinfo=UTC)  # 07:00 EDT
    assert NIGHT.contains(datetime(2030, 3, 10, 10, 59, tzinfo=UTC))
    assert not NIGHT.contains(datetime(2030, 3, 10, 11, 0, tzinfo=UTC))


def test_quiet_hours_must_be_a_window_in_a_known_zone() -> None:
    with pytest.raises(ValueError, match="differ"):
        QuietHours(time(7, 0), time(7, 0), "UTC")
    with pytest.raises(Exception, match="Mars"):
        QuietHours(time(7, 0), time(8, 0), "Mars/Olympus_Mons")


@pytest.mark.parametrize("priority", [Priority.URGENT, Priority.ASAP, Priority.STAT])
def test_only_routine_messages_wait_for_quiet_hours_to_end(priority: Priority) -> None:
    profile = Profile("c-1", has_email=True, has_phone=True, quiet_hours=NIGHT)
    assert deferred_until(priority, profile, ny(23, 0)) is None
    assert deferred_until(Priority.ROUTINE, profile, ny(23, 0)) == ny(7, 0, day=16)
    assert deferred_until(Priority.ROUTINE, profile, ny(9, 0)) is None


# -- channels --------------------------------------------------------------------------------


def test_without_preferences_the_routing_table_decides() -> None:
    assert choose_channels(Priority.STAT, (SMS, IN_APP), None) == (IN_APP, SMS)
    assert choose_channels(Priority.ROUTINE, (IN_APP, EMAIL), Profile("c")) == (IN_APP, EMAIL)


def test_routine_preferences_replace_the_defaults_but_keep_the_inbox() -> None:
    profile = Profile("c", channels={Priority.ROUTINE: (SMS,)})
    assert choose_channels(Priority.ROUTINE, (IN_APP, EMAIL), profile) == (IN_APP, SMS)
    silent = Profile("c", channels={Priority.ROUTINE: ()})
    assert choose_channels(Priority.ROUTINE, (IN_APP, EMAIL), silent) == (IN_APP,)


def test_preferences_cannot_silence_a_stat_page_only_add_to_it() -> None:
    profile = Profile("c", channels={Priority.STAT: (EMAIL,)})
    assert choose_channels(Priority.STAT, (SMS, IN_APP), profile) == (IN_APP, SMS, EMAIL)
    urgent = Profile("c", channels={Priority.URGENT: (IN_APP,)})
    assert choose_channels(Priority.URGENT, (SMS, IN_APP), urgent) == (IN_APP, SMS)


def test_plan_skips_channels_without_a_contact_point() -> None:
    message = Message(RULES["vitals-critical"], ("rx-phone", "rx-none", "rx-unknown"), "t", "b")
    profiles = {
        "rx-phone": Profile("rx-phone", has_phone=True),
        "rx-none": Profile("rx-none", has_email=True),
    }
    deliveries, skipped = plan(message, profiles, ny(9, 0))
    assert [(d.recipient_id, d.channel) for d in deliveries] == [
        ("rx-phone", IN_APP),
        ("rx-phone", SMS),
        ("rx-none", IN_APP),
        ("rx-unknown", IN_APP),
    ]
    assert {(s.recipient_id, s.reason) for s in skipped} == {
        ("rx-none", "no_phone"),
        ("rx-unknown", "no_phone"),
    }


def test_plan_defers_only_the_external_channels_of_routine_messages() -> None:
    message = Message(RULES["session-scheduled"], ("th",), "t", "b")
    profiles = {"th": Profile("th", has_email=True, quiet_hours=NIGHT)}
    deliveries, _ = plan(message, profiles, ny(22, 0))
    assert [(d.channel, d.not_before) for d in deliveries] == [
        (IN_APP, None),
        (EMAIL, ny(7, 0, day=16)),
    ]


# -- retries -----------------------------------------------------------------------------------


def test_backoff_doubles_up_to_a_cap_and_attempts_are_bounded() -> None:
    policy = RetryPolicy(max_attempts=4, base_seconds=2, max_seconds=5)
    assert [policy.backoff(n).total_seconds() for n in (1, 2, 3, 4)] == [2, 4, 5, 5]
    assert [policy.exhausted(n) for n in (1, 3, 4, 5)] == [False, False, True, True]
