"""Valid contract events for notifications' tests (ids only, as on the topics)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from kap_shared import events
from kap_shared.events.enums import Phase, Route, ScreeningOutcome, Severity
from kap_shared.events.intake import PatientScreenedData
from kap_shared.events.monitoring import (
    ObservationDueData,
    SafetyConcernRaisedData,
    VitalsAlertData,
    VitalsAlertResolvedData,
)
from kap_shared.events.scheduling import (
    IntegrationOverdueData,
    SessionCancelledData,
    SessionRescheduledData,
    TreatmentPlanCreatedData,
)
from kap_shared.testing_app import envelope, screening_baseline, session_booking

SITE = "site-a"
PATIENT = "pt-1"
STARTS = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def plan_created(
    plan_id: str = "plan-1",
    *,
    patient_id: str = PATIENT,
    site_id: str = SITE,
    therapist_id: str = "th-ben",
    prescriber_id: str = "rx-ada",
) -> events.TreatmentPlanCreated:
    return events.TreatmentPlanCreated(
        **envelope("scheduling", site_id, patient_id),
        causation_id="screened-event-1",
        data=TreatmentPlanCreatedData(
            plan_id=plan_id,
            route=Route.IV,
            protocol="ketamine_iv_induction",
            prescriber_id=prescriber_id,
            therapist_id=therapist_id,
            planned_dosing_sessions=6,
        ),
    )


def session_scheduled(
    session_id: str = "sess-1",
    *,
    patient_id: str = PATIENT,
    site_id: str = SITE,
    therapist_id: str = "th-ben",
    prescriber_id: str | None = "rx-ada",
    phase: Phase = Phase.DOSING,
    room_id: str = "room-1",
) -> events.SessionScheduled:
    return events.SessionScheduled(
        **envelope("scheduling", site_id, patient_id),
        data=session_booking(
            session_id,
            STARTS,
            phase=phase,
            room_id=room_id,
            prescriber_id=prescriber_id,
            therapist_id=therapist_id,
        ),
    )


def session_rescheduled(
    session_id: str = "sess-1", *, site_id: str = SITE
) -> events.SessionRescheduled:
    return events.SessionRescheduled(
        **envelope("scheduling", site_id, PATIENT),
        data=SessionRescheduledData(
            session_id=session_id,
            phase=Phase.DOSING,
            starts_at=STARTS + timedelta(days=1),
            ends_at=STARTS + timedelta(days=1, hours=2),
            previous_starts_at=STARTS,
        ),
    )


def session_cancelled(
    session_id: str = "sess-1", *, site_id: str = SITE
) -> events.SessionCancelled:
    return events.SessionCancelled(
        **envelope("scheduling", site_id, PATIENT),
        data=SessionCancelledData(session_id=session_id, phase=Phase.DOSING, reason="patient_ill"),
    )


def vitals_alert(
    severity: Severity = Severity.CRITICAL,
    *,
    session_id: str = "sess-1",
    patient_id: str = PATIENT,
    site_id: str = SITE,
) -> events.VitalsAlert:
    return events.VitalsAlert(
        **envelope("monitoring", site_id, patient_id),
        data=VitalsAlertData(
            alert_id="va-1",
            session_id=session_id,
            severity=severity,
            rule_id="KET-MON-BP",
            metric="bp_systolic",
            value=186,
            threshold=180,
            message="Patient Zelphine Quorrowitz BP high",  # free text: must never be copied
        ),
    )


def vitals_resolved(session_id: str = "sess-1") -> events.VitalsAlertResolved:
    return events.VitalsAlertResolved(
        **envelope("monitoring", SITE, PATIENT),
        data=VitalsAlertResolvedData(alert_id="va-1", session_id=session_id, resolved_at=STARTS),
    )


def safety_concern(*, patient_id: str = PATIENT, site_id: str = SITE) -> events.SafetyConcernRaised:
    return events.SafetyConcernRaised(
        **envelope("monitoring", site_id, patient_id),
        data=SafetyConcernRaisedData(source="PHQ-9 item 9", value=2, severity=Severity.CRITICAL),
    )


def screened(
    outcome: ScreeningOutcome = ScreeningOutcome.NEEDS_REVIEW,
    reasons: tuple[str, ...] = ("SPR-PRE-5",),
    *,
    reviewed_by: str | None = None,
    site_id: str = SITE,
) -> events.PatientScreened:
    return events.PatientScreened(
        **envelope("intake", site_id, PATIENT),
        data=PatientScreenedData(
            screening_id="scr-1",
            outcome=outcome,
            route=Route.IV,
            indications=["trd"],
            reasons=list(reasons),
            baseline=screening_baseline(
                phq9_total=14,
                phq9_item9=1 if "MBC-1" in reasons else 0,
                gad7_total=8,
                bp_systolic=150,
                bp_diastolic=85,
                heart_rate=70,
            ),
            reviewed_by=reviewed_by,
        ),
    )


def integration_overdue(
    therapist_id: str = "th-ben", *, site_id: str = SITE, patient_id: str = PATIENT
) -> events.IntegrationOverdue:
    return events.IntegrationOverdue(
        **envelope("scheduling", site_id, patient_id),
        data=IntegrationOverdueData(
            dosing_session_id="sess-1",
            due_by=STARTS + timedelta(hours=72),
            therapist_id=therapist_id,
        ),
    )


def observation_due(session_id: str = "sess-1") -> events.ObservationDue:
    return events.ObservationDue(
        **envelope("monitoring", SITE, PATIENT),
        data=ObservationDueData(
            session_id=session_id, kind="bp_check_40min", due_at=STARTS + timedelta(minutes=40)
        ),
    )
