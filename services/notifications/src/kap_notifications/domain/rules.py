"""Notification rules with defaults, overridable for the network and per site
through RULES_FILE (kap_shared.rules.SiteRules), e.g.

    {"network": {"stat_fallback_escalation_seconds": 600},
     "sites": {"site-south": {"integration_overdue_escalation_seconds": 43200}}}
"""

from __future__ import annotations

from pydantic import Field, field_validator

from kap_shared.clinical.thresholds import (
    MBC_2_PHQ9_RISE_AT_LEAST,
    MBC_2_PHQ9_TOTAL_AT_LEAST,
    MBC_4_GAD7_TOTAL_AT_LEAST,
    MBC_4_PCL5_RISE_AT_LEAST,
)
from kap_shared.events.enums import Instrument
from kap_shared.rules import RulesModel
from kap_shared.validation import known_time_zone


class NotificationRules(RulesModel):
    """Unknown keys and out-of-range values fail at start-up (kap_shared.rules)."""

    # IntegrationOverdue (KAP-2) goes to the therapist; unacknowledged after this
    # long it escalates to the site's coordinators. [K] default: one working day.
    integration_overdue_escalation_seconds: int = Field(default=86_400, ge=1)
    # A critical alert at a site with no escalation levels still escalates, to the
    # site's coordinators, after this long. null disables the safety net.
    stat_fallback_escalation_seconds: int | None = Field(default=300, ge=1)

    # -- handoffs across phases (issue 11) ----------------------------------------------------
    # KAP-2 "warn at 48 h": the therapist is warned this long after the dosing session
    # ended (discharge or completion) if no integration session is booked by then.
    integration_warning_after_seconds: int = Field(default=48 * 3600, ge=1)
    # A discharge (DischargeCleared) usually precedes the session's completion, which
    # carries the KAP-2 deadline; the window is told without it if the completion has
    # not arrived this long after the discharge.
    integration_window_grace_seconds: int = Field(default=900, ge=1)
    # The daily digest of routine handoffs (in-app and email): the site's local time,
    # its IANA zone, and the period (86400: once a day; shorter only in tests).
    digest_local_time: str = Field(default="17:00", pattern=r"^([01]\d|2[0-3]):[0-5]\d$")
    digest_timezone: str = "UTC"
    digest_period_seconds: int = Field(default=86_400, ge=1)
    # MBC-2 / MBC-4 are decided by monitoring (OutcomeRecorded.follow_up). These limits
    # only serve OutcomeRecorded events without `follow_up`, from monitoring versions
    # before issue 8 (the topic may still hold them); the defaults are kap_shared's.
    # MBC-2: PHQ-9 total at or above this, or a rise of at least this [K].
    mbc2_phq9_total: float = MBC_2_PHQ9_TOTAL_AT_LEAST
    mbc2_phq9_rise: float = MBC_2_PHQ9_RISE_AT_LEAST
    # MBC-4: GAD-7 total at or above this, or a PCL-5 rise of at least this -> therapist.
    mbc4_gad7_total: float = MBC_4_GAD7_TOTAL_AT_LEAST
    mbc4_pcl5_rise: float = MBC_4_PCL5_RISE_AT_LEAST

    # Rulebook 3.2 administration frequency, in days, reset at each treatment session
    # (MoodMonitor's default: a PHQ-9 every 14 days) and by each measure. PHQ-9 is
    # scheduled for every plan; GAD-7 / PCL-5 once the patient has one recorded.
    measure_interval_days: dict[Instrument, float] = Field(
        default_factory=lambda: {
            Instrument.PHQ9: 14.0,
            Instrument.GAD7: 14.0,
            Instrument.PCL5: 30.0,
        }
    )

    _known_zone = field_validator("digest_timezone")(known_time_zone)
