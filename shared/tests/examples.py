"""One realistic, valid example of every event type of CONTRACT section 3.

`EXAMPLE_DATA[event_type]` is the `data` object; `EXAMPLES[event_type]` is the
whole envelope as it travels on Kafka (JSON-able: strings, numbers, lists,
dicts only). Other tests reuse them: `example(event_type, **overrides)` returns
a fresh deep copy, optionally with envelope fields replaced.

Ids are pseudonymous and nothing here is PHI (CONTRACT section 1).
"""

from __future__ import annotations

import copy
from typing import Any

SITE = "site-north"
PATIENT = "pt-7f3c2a"
CORRELATION = "episode-2025-0042"

EXAMPLE_DATA: dict[str, dict[str, Any]] = {
    # --- kap.intake.events.v1 -------------------------------------------------
    "PatientReferred": {
        "indications": ["trd", "ptsd"],
        "referral_source": "gp-referral",
    },
    "PatientScreened": {
        "screening_id": "scr-0001",
        "outcome": "needs_review",
        "route": "iv",
        "indications": ["trd"],
        "contraindications": [
            {"code": "uncontrolled_hypertension", "class": "relative"},
        ],
        "reasons": ["KET-PRE-5", "MBC-1"],
        "baseline": {
            "phq9_total": 19,
            "phq9_item9": 1,
            "gad7_total": 12,
            "pcl5_total": 41,
            "bp_systolic": 148,
            "bp_diastolic": 92,
            "heart_rate": 78,
        },
        "reviewed_by": "dr-ada",
        "review_reason": "bp_controlled_on_recheck",
    },
    "ConsentRecorded": {
        "consent_id": "cons-0001",
        "scope": "rems_enrollment",
        "granted": True,
    },
    # --- kap.scheduling.events.v1 ---------------------------------------------
    "TreatmentPlanCreated": {
        "plan_id": "plan-0001",
        "route": "intranasal_esketamine",
        "protocol": "esketamine_trd",
        "prescriber_id": "dr-ada",
        "therapist_id": "th-grace",
        "planned_dosing_sessions": 8,
    },
    "SessionScheduled": {
        "session_id": "ses-0003",
        "plan_id": "plan-0001",
        "phase": "dosing",
        "sequence": 1,
        "starts_at": "2025-03-04T09:00:00Z",
        "ends_at": "2025-03-04T11:30:00Z",
        "room_id": "room-2",
        "prescriber_id": "dr-ada",
        "therapist_id": "th-grace",
        "nurse_id": "rn-joan",
    },
    "SessionRescheduled": {
        "session_id": "ses-0003",
        "phase": "dosing",
        "starts_at": "2025-03-05T09:00:00Z",
        "ends_at": "2025-03-05T11:30:00Z",
        "previous_starts_at": "2025-03-04T09:00:00Z",
    },
    "SessionCancelled": {
        "session_id": "ses-0004",
        "phase": "integration",
        "reason": "patient_request",
    },
    "SessionCheckedIn": {
        "session_id": "ses-0003",
        "phase": "dosing",
        "checked_in_at": "2025-03-05T08:52:10Z",
    },
    "SessionCompleted": {
        "session_id": "ses-0003",
        "phase": "dosing",
        "completed_at": "2025-03-05T11:21:00Z",
        "plan_id": "plan-0001",
        "integration_due_by": "2025-03-08T11:21:00Z",
        "dosing_sessions_completed": 1,
        "planned_dosing_sessions": 8,
        "open_dosing_holds": 0,
    },
    "PhaseAdvanced": {
        "plan_id": "plan-0001",
        "from_phase": "preparation",
        "to_phase": "dosing",
    },
    "IntegrationOverdue": {
        "dosing_session_id": "ses-0003",
        "due_by": "2025-03-08T11:21:00Z",
        "therapist_id": "th-grace",
        "rule_id": "KAP-2",
    },
    "InductionReviewDue": {
        "plan_id": "plan-0001",
        "prescriber_id": "dr-ada",
        "dosing_sessions_completed": 8,
        "rule_id": "SPR-SCH-1",
    },
    # --- kap.monitoring.vitals.v1 ---------------------------------------------
    "VitalsRecorded": {
        "session_id": "ses-0003",
        "reading_id": "rd-000117",
        "recorded_at": "2025-03-05T09:40:00Z",
        "bp_systolic": 162,
        "bp_diastolic": 98,
        "heart_rate": 88,
        "spo2": 97.5,
        "respiratory_rate": 14,
        "sedation_moaas": 4,
        "symptoms": ["severe_headache"],
        "dissociation": "mild",
        "cadss_total": 12,
    },
    # --- kap.monitoring.events.v1 ---------------------------------------------
    "DoseAdministered": {
        "session_id": "ses-0003",
        "administered_at": "2025-03-05T09:00:00Z",
        "route": "intranasal_esketamine",
        "agent": "esketamine",
        "dose_mg": 28.0,
        "device_number": 1,
        "lot_number": "LOT-A1234",
        "charted_at": "2025-03-05T09:02:30Z",
        "dosing_ended_at": None,
        "concomitant_medications": ["benzodiazepine"],
    },
    "VitalsAlert": {
        "alert_id": "al-0009",
        "session_id": "ses-0003",
        "severity": "critical",
        "rule_id": "KET-MON-BP",
        "metric": "bp_systolic",
        "value": 204.0,
        "threshold": 200.0,
        "message": "SBP 204 > 200 once: pause dosing, notify prescriber",
    },
    "VitalsAlertResolved": {
        "alert_id": "al-0009",
        "session_id": "ses-0003",
        "resolved_at": "2025-03-05T09:55:00Z",
    },
    "ObservationDue": {
        "session_id": "ses-0003",
        "kind": "bp_check_40min",
        "due_at": "2025-03-05T09:40:00Z",
        "rule_id": "SPR-MON-1",
    },
    "DischargeCleared": {
        "session_id": "ses-0003",
        "first_dose_at": "2025-03-05T09:00:00Z",
        "cleared_at": "2025-03-05T11:05:00Z",
        "observed_minutes": 125.0,
        "signed_by": "dr-ada",
    },
    "OutcomeRecorded": {
        "instrument": "PHQ-9",
        "total": 9.0,
        "band": "mild",
        "baseline_total": 19.0,
        "change_pct": -52.6,
        "response": True,
        "remission": False,
        "follow_up": [],
    },
    "SafetyConcernRaised": {
        "source": "PHQ-9 item 9",
        "value": 2.0,
        "severity": "critical",
        "rule_id": "MBC-1",
    },
    # --- kap.notifications.events.v1 ------------------------------------------
    "NotificationSent": {
        "notification_id": "ntf-0100",
        "source_event_id": "5d1b7a52-3a8e-4b8e-9d55-4f0e3c2b9a11",
        "recipient_id": "dr-ada",
        "channel": "sms",
        "priority": "urgent",
    },
    "NotificationFailed": {
        "notification_id": "ntf-0101",
        "source_event_id": "5d1b7a52-3a8e-4b8e-9d55-4f0e3c2b9a11",
        "recipient_id": "th-grace",
        "channel": "email",
        "error": "smtp 451 temporary failure",
    },
    "AlertAcknowledged": {
        "notification_id": "ntf-0100",
        "source_event_id": "5d1b7a52-3a8e-4b8e-9d55-4f0e3c2b9a11",
        "acknowledged_by": "dr-ada",
        "acknowledged_at": "2025-03-05T09:43:12Z",
    },
    "AlertEscalated": {
        "source_event_id": "5d1b7a52-3a8e-4b8e-9d55-4f0e3c2b9a11",
        "level": 2,
        "to_recipient_ids": ["dr-lin", "rn-joan"],
    },
    "PmfOpened": {
        "pmf_id": "pmf-0001",
        "session_id": "ses-0007",
        "due_by": "2025-03-12T23:59:59Z",
    },
    "PmfReminder": {
        "pmf_id": "pmf-0001",
        "session_id": "ses-0007",
        "due_by": "2025-03-12T23:59:59Z",
        "days_left": 2,
        "missing_fields": ["bp_40min"],
    },
    "PmfOverdue": {
        "pmf_id": "pmf-0001",
        "session_id": "ses-0007",
        "due_by": "2025-03-12T23:59:59Z",
        "missing_fields": ["bp_40min"],
    },
    "PmfSubmitted": {
        "pmf_id": "pmf-0001",
        "session_id": "ses-0007",
        "submitted_at": "2025-03-07T10:15:00Z",
        "submitted_by": "co-north",
        "confirmation": "REMS-2025-000123",
    },
}

# CONTRACT section 2, written out by hand so the tests do not trust the code's own table.
CONTRACT_TOPICS: dict[str, list[str]] = {
    "kap.intake.events.v1": ["PatientReferred", "PatientScreened", "ConsentRecorded"],
    "kap.scheduling.events.v1": [
        "TreatmentPlanCreated",
        "SessionScheduled",
        "SessionRescheduled",
        "SessionCancelled",
        "SessionCheckedIn",
        "SessionCompleted",
        "PhaseAdvanced",
        "IntegrationOverdue",
        "InductionReviewDue",
    ],
    "kap.monitoring.vitals.v1": ["VitalsRecorded"],
    "kap.monitoring.events.v1": [
        "DoseAdministered",
        "VitalsAlert",
        "VitalsAlertResolved",
        "ObservationDue",
        "DischargeCleared",
        "OutcomeRecorded",
        "SafetyConcernRaised",
    ],
    "kap.notifications.events.v1": [
        "NotificationSent",
        "NotificationFailed",
        "AlertAcknowledged",
        "AlertEscalated",
    ],
    "kap.records.events.v1": ["PmfOpened", "PmfReminder", "PmfOverdue", "PmfSubmitted"],
}
# The producer of each topic's events (CONTRACT section 2); vitals come from a device.
PRODUCERS: dict[str, str] = {
    event_type: topic.split(".")[1]
    for topic, types in CONTRACT_TOPICS.items()
    for event_type in types
} | {"VitalsRecorded": "gw-bedside-07"}


def _event_id(index: int) -> str:
    return f"00000000-0000-4000-8000-{index:012d}"


EXAMPLES: dict[str, dict[str, Any]] = {
    event_type: {
        "event_id": _event_id(index),
        "event_type": event_type,
        "schema_version": 1,
        "occurred_at": "2025-03-05T09:41:07.250000Z",
        "producer": PRODUCERS[event_type],
        "site_id": SITE,
        "patient_id": PATIENT,
        "correlation_id": CORRELATION,
        "causation_id": None if index == 1 else _event_id(index - 1),
        "data": data,
    }
    for index, (event_type, data) in enumerate(EXAMPLE_DATA.items(), start=1)
}


def example(event_type: str, /, **envelope_overrides: Any) -> dict[str, Any]:
    """A fresh deep copy of the example envelope, with fields replaced."""
    message = copy.deepcopy(EXAMPLES[event_type])
    message.update(envelope_overrides)
    return message


def example_data(event_type: str, /, **overrides: Any) -> dict[str, Any]:
    """A fresh deep copy of the example `data`, with fields replaced."""
    data = copy.deepcopy(EXAMPLE_DATA[event_type])
    data.update(overrides)
    return data
