"""Notification rules with defaults, overridable for the network and per site
through RULES_FILE (kap_shared.rules.SiteRules), e.g.

    {"network": {"stat_fallback_escalation_seconds": 600},
     "sites": {"site-south": {"integration_overdue_escalation_seconds": 43200}}}
"""

from __future__ import annotations

from pydantic import Field

from kap_shared.rules import RulesModel


class NotificationRules(RulesModel):
    """Unknown keys and out-of-range values fail at start-up (kap_shared.rules)."""

    # IntegrationOverdue (KAP-2) goes to the therapist; unacknowledged after this
    # long it escalates to the site's coordinators. [K] default: one working day.
    integration_overdue_escalation_seconds: int = Field(default=86_400, ge=1)
    # A critical alert at a site with no escalation levels still escalates, to the
    # site's coordinators, after this long. null disables the safety net.
    stat_fallback_escalation_seconds: int | None = Field(default=300, ge=1)
