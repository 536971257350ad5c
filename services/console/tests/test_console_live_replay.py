"""What a page that connects late is told (`ReplayLog`, `LiveHub.subscribe`): the
events it missed since the position it was rendered at or last received, or `resync`
(read everything again) whenever the console cannot vouch for what it missed."""

from __future__ import annotations

import pytest

from kap_console.adapters.live import LiveHub
from kap_console.domain.live import LiveEvent, Logged, ReplayLog


def change(session_id: str, site_id: str = "site-north") -> LiveEvent:
    return LiveEvent(
        event_type="VitalsRecorded",
        site_id=site_id,
        patient_id=f"p-{session_id}",
        session_id=session_id,
        severity=None,
        topic="kap.monitoring.vitals.v1",
    )


def sessions(missed: list[Logged] | None) -> list[str | None]:
    assert missed is not None
    return [logged.event.session_id for logged in missed]


def test_the_events_after_a_position_are_replayed_in_order() -> None:
    log = ReplayLog("e1", size=10)
    log.append(change("s0"))
    rendered = log.position
    log.append(change("s1"))
    log.append(change("s2"))

    assert sessions(log.since(rendered)) == ["s1", "s2"]
    assert log.since(log.position) == []


def test_each_event_carries_the_position_a_reconnection_resumes_from() -> None:
    log = ReplayLog("e1", size=10)
    first = log.append(change("s1"))
    log.append(change("s2"))

    assert sessions(log.since(first.position)) == ["s2"]


def test_the_oldest_position_still_kept_is_replayed_and_the_one_before_is_not() -> None:
    log = ReplayLog("e1", size=2)
    before = log.position  # e1.0
    oldest_kept = log.append(change("s1")).position  # evicted below: its successors kept
    log.append(change("s2"))
    log.append(change("s3"))  # s1 evicted; s2 and s3 kept

    assert sessions(log.since(oldest_kept)) == ["s2", "s3"]
    assert log.since(before) is None  # s1 is no longer kept: the page must read again


@pytest.mark.parametrize(
    "position",
    [
        "e2.0",  # another replica, or this console before a restart
        "e1.7",  # a position this console has not reached
        "e1.x",
        "e1.²",  # a digit to str.isdigit, not to int()
        "e1.-1",
        "e1." + "9" * 5000,  # past int()'s limit on digits: refused, not an error
        "",
        "e1",
    ],
)
def test_a_position_the_log_cannot_vouch_for_is_answered_none(position: str) -> None:
    log = ReplayLog("e1", size=10)
    log.append(change("s1"))

    assert log.since(position) is None


def test_after_a_gap_no_earlier_position_is_replayed_but_a_later_one_is() -> None:
    log = ReplayLog("e1", size=10)
    rendered = log.append(change("s1")).position
    log.gap()  # the feed rejoined its partitions: events may be missing here
    after_gap = log.position
    log.append(change("s2"))

    assert log.since(rendered) is None
    assert sessions(log.since(after_gap)) == ["s2"]


async def test_a_stream_opened_late_is_sent_its_sites_missed_events_first() -> None:
    hub = LiveHub()
    rendered = hub.position
    hub.publish(change("s1"))
    hub.publish(change("s9", site_id="site-south"))  # not this clinician's site

    subscription = hub.subscribe(["site-north"], since=rendered)

    assert not subscription.resync
    assert subscription.resume_from == rendered
    replayed = await subscription.next(0.1)
    assert replayed is not None
    assert replayed.event.session_id == "s1"
    assert await subscription.next(0.01) is None  # nothing else queued


async def test_a_stream_that_missed_nothing_resumes_from_the_current_position() -> None:
    hub = LiveHub()
    hub.publish(change("s1"))
    rendered = hub.position

    subscription = hub.subscribe(["site-north"], since=rendered)

    assert not subscription.resync
    assert subscription.resume_from == hub.position
    assert await subscription.next(0.01) is None


async def test_a_stream_the_hub_cannot_replay_is_told_to_resync() -> None:
    hub = LiveHub()
    other_replica = LiveHub().position

    subscription = hub.subscribe(["site-north"], since=other_replica)

    assert subscription.resync
    assert subscription.resume_from == hub.position


async def test_more_missed_events_than_a_stream_holds_is_a_resync_not_a_closed_stream() -> None:
    hub = LiveHub(queue_size=3, replay_size=100)
    rendered = hub.position
    for n in range(3):
        hub.publish(change(f"s{n}"))

    subscription = hub.subscribe(["site-north"], since=rendered)

    assert subscription.resync
    assert not subscription.closed


async def test_a_gap_closes_open_streams_and_their_reconnection_resyncs() -> None:
    hub = LiveHub()
    subscription = hub.subscribe(["site-north"], since=hub.position)
    last_received = subscription.resume_from

    hub.gap()

    assert subscription.closed
    assert hub.subscribe(["site-north"], since=last_received).resync
