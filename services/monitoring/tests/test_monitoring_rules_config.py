"""A bad RULES_FILE stops monitoring at start-up, naming the key (kap_shared.rules)."""

from __future__ import annotations

from kap_monitoring.bootstrap import build
from kap_monitoring.config import MonitoringSettings
from kap_shared import testing_ops as ops


class TestRulesFile(ops.RulesFileAtStartUp):
    settings = MonitoringSettings
    build = build
    key = "hr_sustained_seconds"  # a rule whose minimum is above 0
