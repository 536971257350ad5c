"""Handoffs across phases (issue 11): one test per routing row and per boundary.
Events go through the real consumer path; timers are fired on the fake clock."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from kap_notifications.domain.handoffs import next_digest_at
from kap_notifications.domain.routing import HANDOFF_TABLE
from kap_notifications.domain.rules import NotificationRules
from kap_shared.events import (
    DischargeCleared,
    InductionReviewDue,
    OutcomeRecorded,
    PhaseAdvanced,
    SessionCompleted,
    SessionScheduled,
)
from kap_shared.events.enums import Instrument, Phase
from kap_shared.events.monitoring import DischargeClearedData, OutcomeRecordedData
from kap_shared.events.scheduling import (
    InductionReviewDueData,
    PhaseAdvancedData,
    SessionCompletedData,
)
from kap_shared.testing import rows, token
from kap_shared.testing_app import session_booking

from . import factories as f
from .conftest import Harness, ts

THERAPIST, PRESCRIBER = "th-ben", "rx-ada"
CLOCK_START = datetime(2030, 1, 15, 15, 0, tzinfo=UTC)  # conftest.Clock's start


def _env(producer: str) -> dict[str, Any]:
    return {
        "producer": producer,
        "site_id": f.SITE,
        "patient_id": f.PATIENT,
        "correlation_id": f"episode-{f.PATIENT}",
    }


def completed(
    phase: Phase = Phase.DOSING,
    session_id: str = "sess-1",
    *,
    due_in_hours: float | None = 72,
    done: int | None = 1,
    planned: int | None = 6,
    holds: int | None = 0,
    at: datetime = CLOCK_START,
) -> SessionCompleted:
    return SessionCompleted(
        **_env("scheduling"),
        data=SessionCompletedData(
            session_id=session_id,
            phase=phase,
            completed_at=at,
            plan_id="plan-1",
            integration_due_by=at + timedelta(hours=due_in_hours) if due_in_hours else None,
            dosing_sessions_completed=done,
            planned_dosing_sessions=planned,
            open_dosing_holds=holds,
        ),
    )


def discharged(session_id: str = "sess-1") -> DischargeCleared:
    return DischargeCleared(
        **_env("monitoring"),
        data=DischargeClearedData(
            session_id=session_id,
            first_dose_at=f.STARTS,
            cleared_at=f.STARTS + timedelta(hours=2),
            observed_minutes=120,
            signed_by="rn-1",
        ),
    )


def phase(from_phase: Phase | None, to_phase: Phase) -> PhaseAdvanced:
    return PhaseAdvanced(
        **_env("scheduling"),
        data=PhaseAdvancedData(plan_id="plan-1", from_phase=from_phase, to_phase=to_phase),
    )


def outcome(
    total: float,
    instrument: Instrument = Instrument.PHQ9,
    *,
    baseline: float | None = 20,
    response: bool = False,
    remission: bool = False,
    follow_up: list[str] | None = None,
) -> OutcomeRecorded:
    """`follow_up=None`: as a monitoring from before issue 8 sent it (not evaluated)."""
    change = round((total - baseline) / baseline * 100, 1) if baseline else None
    return OutcomeRecorded(
        **_env("monitoring"),
        data=OutcomeRecordedData(
            instrument=instrument,
            total=total,
            band="moderate",
            baseline_total=baseline,
            change_pct=change,
            response=response,
            remission=remission,
            follow_up=follow_up,
        ),
    )


def induction_review(done: int = 8) -> InductionReviewDue:
    return InductionReviewDue(
        **_env("scheduling"),
        data=InductionReviewDueData(
            plan_id="plan-1", prescriber_id=PRESCRIBER, dosing_sessions_completed=done
        ),
    )


@pytest.fixture
def team(h: Harness) -> Harness:
    """A plan team with email addresses, and its dosing session booked."""
    for clinician, role in ((THERAPIST, "therapist"), (PRESCRIBER, "prescriber")):
        email = f"{clinician}@clinic.example"
        assert h.put_recipient(clinician, role=role, email=email).status_code == 201
    h.deliver(f.plan_created())
    h.deliver(f.session_scheduled("sess-1", phase=Phase.DOSING))
    return h


def handoffs(h: Harness, rule_title: str | None = None) -> list[dict[str, Any]]:
    """Notifications other than the booking/plan rows the fixture caused."""
    found = h.notifications("source_event_type NOT IN ('TreatmentPlanCreated', 'SessionScheduled')")
    return [n for n in found if rule_title is None or n["title"] == rule_title]


def told(h: Harness, title: str) -> list[tuple[str, str, str]]:
    return [(n["recipient_id"], n["channel"], n["priority"]) for n in handoffs(h, title)]


def by_email_and_in_app(clinician: str, priority: str) -> list[tuple[str, str, str]]:
    """What `told` finds for a clinician with an email address told once at `priority`."""
    return [(clinician, "email", priority), (clinician, "in_app", priority)]


def _window_opened_at(h: Harness) -> datetime:
    [(opened,)] = rows(h.db, "SELECT opened_at FROM integration_windows")
    return ts(opened)


# -- KAP-2: the integration window, the 48-hour warning, settlement ------------------------------


def test_KAP_2_dosing_completed_tells_the_therapist_the_window_and_deadline(
    team: Harness,
) -> None:
    event = completed()
    team.deliver(event)
    team.deliver(event)  # redelivered: nothing twice
    assert told(team, "Integration window open") == [(THERAPIST, "in_app", "routine")]
    [window] = handoffs(team, "Integration window open")
    assert "sess-1" in window["body"]
    assert "KAP-2" in window["body"]
    assert " h (KAP-2)" in window["body"]  # the deadline, as hours from now


def test_KAP_2_discharge_then_completion_is_one_window_with_the_deadline(team: Harness) -> None:
    team.deliver(discharged())
    assert handoffs(team) == []  # waits for the completion's deadline
    team.deliver(completed())
    [window] = handoffs(team, "Integration window open")
    assert " h (KAP-2)" in window["body"]
    team.clock.advance(3600)
    assert team.fire_timers() == 0  # the grace timer was cancelled
    assert len(handoffs(team, "Integration window open")) == 1


def test_KAP_2_discharge_without_completion_tells_the_window_after_the_grace_period(
    team: Harness,
) -> None:
    team.deliver(discharged())
    opened = _window_opened_at(team)
    team.clock.set(opened + timedelta(seconds=900) - timedelta(milliseconds=1))
    assert team.fire_timers() == 0
    team.clock.set(opened + timedelta(seconds=900))
    assert team.fire_timers() == 1
    assert told(team, "Integration window open") == [(THERAPIST, "in_app", "routine")]
    team.deliver(completed())  # the completion arrives late: not told twice
    assert len(handoffs(team, "Integration window open")) == 1


def test_KAP_2_warning_at_48_hours_not_a_moment_before(team: Harness) -> None:
    team.deliver(completed())
    opened = _window_opened_at(team)
    team.clock.set(opened + timedelta(hours=48) - timedelta(milliseconds=1))
    team.fire_timers()  # (the day's digest fires meanwhile)
    assert told(team, "Integration session not booked") == []
    team.clock.set(opened + timedelta(hours=48))
    assert team.fire_timers() == 1
    assert told(team, "Integration session not booked") == by_email_and_in_app(THERAPIST, "urgent")
    warning = handoffs(team, "Integration session not booked")[0]
    assert "24 h left" in warning["body"]
    assert not [n for n in handoffs(team) if n["recipient_id"] == PRESCRIBER]


def test_KAP_2_booking_the_integration_session_settles_the_window(team: Harness) -> None:
    team.deliver(completed())
    team.deliver(f.session_scheduled("sess-2", phase=Phase.INTEGRATION))
    [(status,)] = rows(team.db, "SELECT status FROM integration_windows")
    assert status == "settled"
    team.clock.set(_window_opened_at(team) + timedelta(hours=48))
    team.fire_timers()
    assert told(team, "Integration session not booked") == []
    # The booking itself is still routed as before (session team).
    assert len(team.notifications("source_event_type = 'SessionScheduled'")) >= 2


def test_KAP_2_a_booking_does_not_settle_another_patients_window(team: Harness) -> None:
    team.deliver(completed())
    team.deliver(f.session_scheduled("sess-9", patient_id="pt-other", phase=Phase.INTEGRATION))
    team.clock.set(_window_opened_at(team) + timedelta(hours=48))
    team.fire_timers()
    assert len(told(team, "Integration session not booked")) == 2


# -- integration completed -> the prescriber -------------------------------------------------------


def test_integration_completed_tells_the_prescriber_progress_and_next_dose(
    team: Harness,
) -> None:
    team.deliver(completed(Phase.INTEGRATION, "sess-2", due_in_hours=None, done=2, planned=6))
    assert told(team, "Integration session completed") == [(PRESCRIBER, "in_app", "routine")]
    [n] = handoffs(team, "Integration session completed")
    assert "dosing 2/6" in n["body"]
    assert "next dose clear to go ahead" in n["body"]


def test_integration_completed_with_an_open_hold_is_urgent(team: Harness) -> None:
    team.deliver(completed(Phase.INTEGRATION, "sess-2", due_in_hours=None, holds=1))
    assert told(team, "Integration session completed") == by_email_and_in_app(PRESCRIBER, "urgent")
    [n, _] = handoffs(team, "Integration session completed")
    assert "ON HOLD" in n["body"]
    assert "SCH-HOLD-1" in n["body"]


def test_integration_completed_without_the_optional_facts_says_unknown(team: Harness) -> None:
    team.deliver(completed(Phase.INTEGRATION, "sess-2", due_in_hours=None, done=None, holds=None))
    [n] = handoffs(team, "Integration session completed")
    assert "unknown" in n["body"]


def test_preparation_completed_tells_nobody(team: Harness) -> None:
    team.deliver(completed(Phase.PREPARATION, "sess-0", due_in_hours=None))
    assert handoffs(team) == []


# -- phases ------------------------------------------------------------------------------------


def test_phase_advanced_tells_both(team: Harness) -> None:
    team.deliver(phase(Phase.PREPARATION, Phase.DOSING))
    assert sorted(told(team, "Phase advanced")) == [
        (PRESCRIBER, "in_app", "routine"),
        (THERAPIST, "in_app", "routine"),
    ]


def test_dosing_course_complete_tells_both(team: Harness) -> None:
    team.deliver(phase(Phase.DOSING, Phase.INTEGRATION))
    assert len(told(team, "Dosing course complete")) == 2


def test_plan_start_is_not_a_handoff(team: Harness) -> None:
    team.deliver(phase(None, Phase.PREPARATION))
    assert handoffs(team) == []


# -- outcomes (MBC-2, MBC-3, MBC-4) ------------------------------------------------------------
# Monitoring decides MBC-2/MBC-4 and says so in `follow_up`; notifications routes on it.


def test_MBC_2_follow_up_from_monitoring_decides_not_the_score(team: Harness) -> None:
    # A site may lower monitoring's limits: a PHQ-9 of 12 it calls MBC-2 is worsening ...
    team.deliver(outcome(12, follow_up=["MBC-2"]))
    assert len(told(team, "Depression score worsening")) == 4
    # ... and a 25 it did not call MBC-2 (raised limits) is not, whatever the default says.
    team.deliver(outcome(25, follow_up=[]))
    assert len(told(team, "Depression score worsening")) == 4


def test_MBC_4_follow_up_tells_the_therapist_other_follow_ups_do_not(team: Harness) -> None:
    team.deliver(outcome(16, Instrument.GAD7, follow_up=["MBC-GAD7-REFER"]))
    assert told(team, "Outcome worsening") == []
    team.deliver(outcome(12, Instrument.GAD7, follow_up=["MBC-4", "MBC-GAD7-REFER"]))
    assert told(team, "Outcome worsening") == by_email_and_in_app(THERAPIST, "urgent")


# Events without `follow_up` (a monitoring from before issue 8): judged here with the
# rulebook's limits, as before.


def test_MBC_3_response_tells_the_team_once(team: Harness) -> None:
    team.deliver(outcome(10, response=True))
    team.deliver(outcome(9, response=True))
    assert sorted(told(team, "Response")) == [
        (PRESCRIBER, "in_app", "routine"),
        (THERAPIST, "in_app", "routine"),
    ]
    [n, _] = handoffs(team, "Response")
    assert "PHQ-9 10" in n["body"]
    assert "baseline 20" in n["body"]
    assert "-50%" in n["body"]


def test_MBC_3_remission_tells_the_team_once(team: Harness) -> None:
    team.deliver(outcome(4, response=True, remission=True))
    team.deliver(outcome(3, response=True, remission=True))
    assert len(told(team, "Remission")) == 2
    assert told(team, "Response") == []


def test_MBC_2_phq9_rise_of_5_is_urgent_for_the_team_4_is_not(team: Harness) -> None:
    team.deliver(outcome(10))
    team.deliver(outcome(14))  # +4
    assert told(team, "Depression score worsening") == []
    team.deliver(outcome(19))  # +5
    assert sorted(told(team, "Depression score worsening")) == [
        *by_email_and_in_app(PRESCRIBER, "urgent"),
        *by_email_and_in_app(THERAPIST, "urgent"),
    ]


def test_MBC_2_phq9_total_20_is_worsening_19_is_not(team: Harness) -> None:
    team.deliver(outcome(19, baseline=None))
    assert told(team, "Depression score worsening") == []
    team.deliver(outcome(20, baseline=None))
    assert len(told(team, "Depression score worsening")) == 4


def test_MBC_4_gad7_15_tells_the_therapist_14_does_not(team: Harness) -> None:
    team.deliver(outcome(14, Instrument.GAD7))
    assert told(team, "Outcome worsening") == []
    team.deliver(outcome(15, Instrument.GAD7))
    assert told(team, "Outcome worsening") == by_email_and_in_app(THERAPIST, "urgent")


def test_MBC_4_pcl5_rise_of_10_tells_the_therapist_9_does_not(team: Harness) -> None:
    team.deliver(outcome(30, Instrument.PCL5))  # the first: nothing to compare with
    team.deliver(outcome(39, Instrument.PCL5))  # +9
    assert told(team, "Outcome worsening") == []
    team.deliver(outcome(49, Instrument.PCL5))  # +10
    assert [r for r, _, _ in told(team, "Outcome worsening")] == [THERAPIST, THERAPIST]


# -- SPR-SCH-1: the end of induction -------------------------------------------------------------


def test_SPR_SCH_1_induction_review_is_urgent_with_the_latest_no_response(
    team: Harness,
) -> None:
    team.deliver(outcome(16))  # -20 %: no response
    team.deliver(induction_review())
    [n, _] = handoffs(team, "TASK: no response at the end of induction")
    assert told(team, "TASK: no response at the end of induction") == by_email_and_in_app(
        PRESCRIBER, "urgent"
    )
    assert "8 induction sessions" in n["body"]
    assert "PHQ-9 16" in n["body"]
    team.deliver(outcome(15))  # still no response: the task was already given
    assert len(handoffs(team, "TASK: no response at the end of induction")) == 2


def test_SPR_SCH_1_induction_review_with_a_response_is_the_plain_task(team: Harness) -> None:
    team.deliver(outcome(10, response=True))
    team.deliver(induction_review())
    assert len(told(team, "TASK: evaluate benefit at the end of induction")) == 2


def test_SPR_SCH_1_no_response_after_the_review_is_an_urgent_task(team: Harness) -> None:
    team.deliver(induction_review())  # no PHQ-9 yet
    team.deliver(outcome(17))
    assert told(team, "TASK: no response at the end of induction") == by_email_and_in_app(
        PRESCRIBER, "urgent"
    )
    assert not [n for n in handoffs(team) if n["recipient_id"] == THERAPIST]


def test_no_response_before_the_end_of_induction_is_not_a_task(team: Harness) -> None:
    team.deliver(outcome(17))
    assert handoffs(team) == []


# -- the digest ---------------------------------------------------------------------------------

SLOT = datetime(2030, 1, 15, 17, 0, tzinfo=UTC)  # the fake clock starts at 15:00 UTC


def test_digest_collects_routine_handoffs_per_clinician_at_the_site_time(team: Harness) -> None:
    team.deliver(completed())  # routine, therapist
    team.deliver(phase(Phase.PREPARATION, Phase.DOSING))  # routine, both
    team.deliver(outcome(15, Instrument.GAD7))  # urgent: never in the digest
    team.clock.set(SLOT - timedelta(milliseconds=1))
    team.fire_timers()
    assert told(team, "Daily digest: 2 handoff(s)") == []
    team.clock.set(SLOT)
    team.fire_timers()
    assert told(team, "Daily digest: 2 handoff(s)") == by_email_and_in_app(THERAPIST, "routine")
    assert told(team, "Daily digest: 1 handoff(s)") == by_email_and_in_app(PRESCRIBER, "routine")
    [digest, _] = handoffs(team, "Daily digest: 2 handoff(s)")
    assert "integration-window" in digest["body"]
    assert "phase-advanced" in digest["body"]
    team.clock.advance(86_400)
    team.fire_timers()  # nothing new waiting: no second digest
    assert len(handoffs(team, "Daily digest: 2 handoff(s)")) == 2
    assert len(handoffs(team, "Daily digest: 1 handoff(s)")) == 2


def test_digest_email_respects_quiet_hours(team: Harness) -> None:
    quiet = {"start": "16:00", "end": "20:00", "timezone": "UTC"}
    team.put_recipient(THERAPIST, role="therapist", email="th@clinic.example", quiet_hours=quiet)
    team.deliver(completed())
    team.clock.set(SLOT)
    team.fire_timers()
    [(next_attempt,)] = rows(
        team.db,
        "SELECT next_attempt_at FROM notifications WHERE title LIKE 'Daily digest%' "
        "AND channel = 'email'",
    )
    assert ts(next_attempt) == datetime(2030, 1, 15, 20, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("now", "expected"),
    [
        (datetime(2030, 1, 15, 16, 59, tzinfo=UTC), datetime(2030, 1, 15, 17, 0, tzinfo=UTC)),
        (datetime(2030, 1, 15, 17, 0, tzinfo=UTC), datetime(2030, 1, 16, 17, 0, tzinfo=UTC)),
        (datetime(2030, 1, 15, 18, 0, tzinfo=UTC), datetime(2030, 1, 16, 17, 0, tzinfo=UTC)),
    ],
)
def test_next_digest_is_the_next_local_digest_time(now: datetime, expected: datetime) -> None:
    assert next_digest_at(now, NotificationRules()) == expected


def test_next_digest_in_the_sites_zone_across_dst() -> None:
    rules = NotificationRules(digest_local_time="08:00", digest_timezone="America/New_York")
    # 2030-03-10 is the US switch to daylight time: 08:00 local is 12:00 UTC after it.
    assert next_digest_at(datetime(2030, 3, 10, 11, 0, tzinfo=UTC), rules) == datetime(
        2030, 3, 10, 12, 0, tzinfo=UTC
    )


def test_a_short_digest_period_for_tests() -> None:
    rules = NotificationRules(digest_period_seconds=5)
    now = datetime(2030, 1, 15, 15, 0, 1, tzinfo=UTC)
    assert next_digest_at(now, rules) == datetime(2030, 1, 15, 15, 0, 5, tzinfo=UTC)


def test_digest_zone_must_be_a_known_iana_zone() -> None:
    with pytest.raises(ValueError, match="digest_timezone"):
        NotificationRules(digest_timezone="Mars/Olympus")


# -- the measurement schedule (rulebook 3.2) ------------------------------------------------------

DAY = timedelta(days=1)


def _booked(session_id: str, therapist: str, starts: datetime, phase_: Phase) -> SessionScheduled:
    return SessionScheduled(
        **_env("scheduling"),
        data=session_booking(
            session_id,
            starts,
            phase=phase_,
            sequence=2,
            prescriber_id=PRESCRIBER,
            therapist_id=therapist,
        ),
    )


def _phq9_due(h: Harness) -> datetime:
    [(due,)] = rows(h.db, "SELECT due_at FROM measure_schedules WHERE instrument = 'PHQ-9'")
    return ts(due)


def test_phq9_falls_due_14_days_after_the_plan_for_the_plan_therapist(team: Harness) -> None:
    due = _phq9_due(team)
    assert CLOCK_START + 14 * DAY <= due < CLOCK_START + 14 * DAY + timedelta(seconds=1)
    team.clock.set(due - timedelta(milliseconds=1))
    team.fire_timers()
    assert told(team, "Measure due") == []
    team.clock.set(due)
    team.fire_timers()
    assert told(team, "Measure due") == [(THERAPIST, "in_app", "routine")]
    [n] = handoffs(team, "Measure due")
    assert "PHQ-9 is due (every 14 days" in n["body"]


def test_measure_due_reaches_the_clinician_who_sees_the_patient_next(team: Harness) -> None:
    team.put_recipient("th-cover", role="therapist")
    team.deliver(_booked("sess-7", "th-cover", CLOCK_START + 20 * DAY, Phase.INTEGRATION))
    team.clock.set(_phq9_due(team))
    team.fire_timers()
    assert told(team, "Measure due") == [("th-cover", "in_app", "routine")]


def test_a_treatment_session_resets_the_measurement_clock(team: Harness) -> None:
    first_due = _phq9_due(team)
    team.clock.set(CLOCK_START + 10 * DAY)
    team.deliver(completed(at=CLOCK_START + 10 * DAY))
    assert _phq9_due(team) >= CLOCK_START + 24 * DAY
    team.clock.set(first_due)
    team.fire_timers()
    assert told(team, "Measure due") == []


def test_a_measure_resets_its_own_clock_and_starts_gad7(team: Harness) -> None:
    team.clock.set(CLOCK_START + 5 * DAY)
    team.deliver(outcome(12, Instrument.GAD7))
    [(due,)] = rows(team.db, "SELECT due_at FROM measure_schedules WHERE instrument = 'GAD-7'")
    assert ts(due) >= CLOCK_START + 19 * DAY
    assert _phq9_due(team) < CLOCK_START + 15 * DAY  # a GAD-7 does not reset the PHQ-9


def test_schedule_view_shows_a_measure_due_before_the_next_dosing(team: Harness) -> None:
    team.deliver(_booked("sess-8", THERAPIST, CLOCK_START + 16 * DAY, Phase.DOSING))
    response = team.client.get(
        f"/patients/{f.PATIENT}/measurement-schedule",
        headers=token(THERAPIST, "therapist", [f.SITE]),
    )
    assert response.status_code == 200, response.text
    view = response.json()
    assert view["next_dosing_session_id"] == "sess-8"
    [phq9] = view["measures"]
    assert (phq9["instrument"], phq9["overdue"], phq9["due_before_next_dosing"]) == (
        "PHQ-9",
        False,
        True,
    )
    team.clock.set(CLOCK_START + 15 * DAY)
    [phq9] = team.client.get(
        f"/patients/{f.PATIENT}/measurement-schedule",
        headers=token(THERAPIST, "therapist", [f.SITE]),
    ).json()["measures"]
    assert phq9["overdue"] is True


def test_schedule_view_is_404_unknown_and_403_for_another_site(team: Harness) -> None:
    path = f"/patients/{f.PATIENT}/measurement-schedule"
    assert team.client.get(path, headers=token("th-x", "therapist", ["site-b"])).status_code == 403
    unknown = team.client.get(
        "/patients/pt-none/measurement-schedule", headers=token(THERAPIST, "therapist", [f.SITE])
    )
    assert unknown.status_code == 404


# -- exactly once, channel preferences -------------------------------------------------------------


@pytest.mark.parametrize(
    "make",
    [
        completed,
        lambda: completed(Phase.INTEGRATION, "sess-2", due_in_hours=None),
        lambda: phase(Phase.PREPARATION, Phase.DOSING),
        lambda: outcome(10, response=True),
        lambda: outcome(15, Instrument.GAD7),
        induction_review,
    ],
    ids=["window", "integration-done", "phase", "response", "worsening", "induction"],
)
def test_a_redelivered_handoff_event_adds_nothing(team: Harness, make: Any) -> None:
    event = make()
    team.deliver(event)
    before = handoffs(team)
    assert before
    team.deliver(event)
    assert handoffs(team) == before
    assert len(team.outbox("NotificationSent")) == len(
        [n for n in team.notifications() if n["channel"] == "in_app"]
    )


def test_routine_handoffs_follow_the_recipients_channel_preferences(team: Harness) -> None:
    """A therapist who wants routine news by email gets it (preferences replace the
    routine defaults; in-app is always kept)."""
    team.put_recipient(
        THERAPIST, role="therapist", email="th@clinic.example", channels={"routine": ["email"]}
    )
    team.deliver(completed())
    assert told(team, "Integration window open") == by_email_and_in_app(THERAPIST, "routine")


# Each handoff row and the test that proves it.
COVERED = {
    "integration-window": test_KAP_2_dosing_completed_tells_the_therapist_the_window_and_deadline,
    "integration-warning": test_KAP_2_warning_at_48_hours_not_a_moment_before,
    "integration-completed": test_integration_completed_tells_the_prescriber_progress_and_next_dose,
    "integration-completed-hold": test_integration_completed_with_an_open_hold_is_urgent,
    "phase-advanced": test_phase_advanced_tells_both,
    "outcome-remission": test_MBC_3_remission_tells_the_team_once,
    "outcome-response": test_MBC_3_response_tells_the_team_once,
    "outcome-worsening-phq9": test_MBC_2_phq9_rise_of_5_is_urgent_for_the_team_4_is_not,
    "outcome-worsening": test_MBC_4_gad7_15_tells_the_therapist_14_does_not,
    "induction-no-response": test_SPR_SCH_1_no_response_after_the_review_is_an_urgent_task,
    "induction-review": test_SPR_SCH_1_induction_review_is_urgent_with_the_latest_no_response,
    "digest": test_digest_collects_routine_handoffs_per_clinician_at_the_site_time,
    "measure-due": test_phq9_falls_due_14_days_after_the_plan_for_the_plan_therapist,
}


def test_every_handoff_row_is_exercised() -> None:
    assert set(COVERED) == {rule.key for rule in HANDOFF_TABLE}
