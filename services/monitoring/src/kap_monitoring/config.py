"""Monitoring settings: the platform's, the clinical rules (RULES_FILE) and the
vitals batch consumer's tuning."""

from __future__ import annotations

from typing import ClassVar

from kap_shared.rules import RulesFromFile, from_rules_file
from kap_shared.settings import ServiceSettings, VitalsBatchSettings

from .domain.rules import MonitoringRules


class MonitoringSettings(ServiceSettings, VitalsBatchSettings):
    service_name: str = "monitoring"
    http_port: int = 8003

    # The kap.monitoring.vitals.v1 consumer takes readings in batches: one database
    # transaction per batch, offsets committed behind it (see entrypoints.vitals_batch; its
    # tuning, VITALS_BATCH_*, is kap_shared.settings.VitalsBatchSettings).
    vitals_consumer_enabled: bool = True
    # A group of its own: in one group with the event subscribers, each of their joins
    # and leaves would stop and rebalance the high-volume vitals stream too.
    vitals_consumer_group: str = "monitoring-vitals"

    monitoring_rules: ClassVar[RulesFromFile[MonitoringRules]] = from_rules_file(MonitoringRules)
