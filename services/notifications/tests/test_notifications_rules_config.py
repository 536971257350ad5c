"""A bad RULES_FILE stops notifications at start-up, naming the key (kap_shared.rules)."""

from __future__ import annotations

from kap_notifications.bootstrap import build
from kap_notifications.config import NotificationsSettings
from kap_shared import testing_ops as ops


class TestRulesFile(ops.RulesFileAtStartUp):
    settings = NotificationsSettings
    build = build
    key = "integration_overdue_escalation_seconds"  # a rule whose minimum is above 0
