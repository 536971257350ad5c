"""Monitoring's view of baselines and sessions, kept current from events
(through the consumer path: decode -> inbox guard -> handler)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from kap_shared.events import (
    Envelope,
    PatientReferred,
    PatientScreened,
    SessionCheckedIn,
    SessionScheduled,
)
from kap_shared.events.enums import Phase, Route, ScreeningOutcome
from kap_shared.events.intake import Baseline, PatientReferredData, PatientScreenedData
from kap_shared.events.scheduling import SessionCheckedInData
from kap_shared.messaging.broker import NON_RETRYABLE
from kap_shared.messaging.errors import PermanentError
from kap_shared.testing import rows
from kap_shared.testing_app import envelope, session_booking

Deliver = Callable[[Envelope], bool]

STARTS = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def screened(
    *,
    screening_id: str = "scr-1",
    route: Route = Route.INTRANASAL_ESKETAMINE,
    bp: tuple[int, int] = (132, 84),
    phq9_total: int = 19,
    pcl5_total: int | None = 41,
) -> PatientScreened:
    return PatientScreened(
        **envelope("intake", "site-a", "pt-1"),
        data=PatientScreenedData(
            screening_id=screening_id,
            outcome=ScreeningOutcome.ELIGIBLE,
            route=route,
            indications=["trd", "ptsd"],
            baseline=Baseline(
                phq9_total=phq9_total,
                phq9_item9=0,
                gad7_total=11,
                pcl5_total=pcl5_total,
                bp_systolic=bp[0],
                bp_diastolic=bp[1],
                heart_rate=74,
            ),
        ),
    )


def scheduled(session_id: str = "ses-1", phase: Phase = Phase.DOSING) -> SessionScheduled:
    return SessionScheduled(
        **envelope("scheduling", "site-a", "pt-1"),
        data=session_booking(session_id, STARTS, phase=phase),
    )


def checked_in(session_id: str = "ses-1") -> SessionCheckedIn:
    return SessionCheckedIn(
        **envelope("scheduling", "site-a", "pt-1"),
        data=SessionCheckedInData(
            session_id=session_id,
            phase=Phase.DOSING,
            checked_in_at=STARTS - timedelta(minutes=10),
        ),
    )


def baselines(db: Path) -> list[tuple[object, ...]]:
    return rows(
        db,
        "SELECT patient_id, site_id, screening_id, route, phq9_total, gad7_total, pcl5_total, "
        "bp_systolic, bp_diastolic, heart_rate FROM baselines",
    )


def sessions(db: Path) -> list[tuple[object, ...]]:
    return rows(
        db,
        "SELECT session_id, patient_id, site_id, plan_id, phase, therapist_id, prescriber_id, "
        "status, checked_in_at FROM monitored_sessions",
    )


# -- baselines ---------------------------------------------------------------------------


def test_patient_screened_records_the_baseline(deliver: Deliver, db: Path) -> None:
    assert deliver(screened()) is True
    assert baselines(db) == [
        ("pt-1", "site-a", "scr-1", "intranasal_esketamine", 19, 11, 41, 132, 84, 74)
    ]


def test_a_later_screening_updates_the_vitals_but_not_the_MBC_3_baseline(
    deliver: Deliver, db: Path
) -> None:
    deliver(screened())
    deliver(
        screened(screening_id="scr-2", route=Route.IV, bp=(121, 79), phq9_total=14, pcl5_total=None)
    )
    # MBC-3 compares with the pre-treatment totals (19, 11, 41): a re-screening keeps them.
    assert baselines(db) == [("pt-1", "site-a", "scr-2", "iv", 19, 11, 41, 121, 79, 74)]


def test_redelivered_screening_is_processed_once(deliver: Deliver, db: Path) -> None:
    event = screened()
    assert deliver(event) is True
    assert deliver(event) is False
    assert len(baselines(db)) == 1
    assert rows(db, "SELECT consumer_group, event_id FROM inbox_messages") == [
        ("monitoring", str(event.event_id))
    ]


# -- sessions ----------------------------------------------------------------------------


def test_session_scheduled_creates_a_monitored_session(deliver: Deliver, db: Path) -> None:
    assert deliver(scheduled()) is True
    assert sessions(db) == [
        ("ses-1", "pt-1", "site-a", "plan-1", "dosing", "th-ben", "rx-ada", "scheduled", None)
    ]


def test_session_scheduled_twice_keeps_one_session(deliver: Deliver, db: Path) -> None:
    deliver(scheduled())
    deliver(scheduled())  # a second event (new event_id) for the same session
    assert len(sessions(db)) == 1


def test_check_in_of_a_known_session_updates_its_status(deliver: Deliver, db: Path) -> None:
    deliver(scheduled())

    assert deliver(checked_in()) is True

    [(status, at)] = rows(db, "SELECT status, checked_in_at FROM monitored_sessions")
    assert status == "checked_in"
    assert str(at).startswith("2026-03-02 08:50:00")


def test_check_in_of_an_unknown_session_is_a_permanent_error(deliver: Deliver, db: Path) -> None:
    event = checked_in("ses-unknown")

    with pytest.raises(PermanentError, match="ses-unknown"):
        deliver(event)

    # Nothing was recorded, not even the inbox claim: the dead-letter path owns it now.
    assert sessions(db) == []
    assert rows(db, "SELECT * FROM inbox_messages") == []


def test_permanent_errors_skip_retries_and_go_to_the_dead_letter_topic() -> None:
    assert PermanentError in NON_RETRYABLE


def test_check_in_arriving_after_its_session_is_then_processed(deliver: Deliver, db: Path) -> None:
    """A redelivery after the failure is not mistaken for a duplicate."""
    event = checked_in()
    with pytest.raises(PermanentError):
        deliver(event)
    deliver(scheduled())

    assert deliver(event) is True
    assert [s[7] for s in sessions(db)] == ["checked_in"]


def test_events_monitoring_does_not_handle_are_ignored(deliver: Deliver, db: Path) -> None:
    referred = PatientReferred(
        **envelope("intake", "site-a", "pt-1"),
        data=PatientReferredData(indications=["trd"]),
    )
    assert deliver(referred) is False
    assert rows(db, "SELECT * FROM inbox_messages") == []


def test_handlers_publish_nothing(deliver: Deliver, db: Path) -> None:
    deliver(screened())
    deliver(scheduled())
    deliver(checked_in())
    assert rows(db, "SELECT COUNT(*) FROM outbox_messages") == [(0,)]
