"""Monitoring settings: the platform's, the clinical rules (RULES_FILE) and the
vitals batch consumer's tuning."""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field

from kap_shared.rules import RulesFromFile, from_rules_file
from kap_shared.settings import ServiceSettings

from .domain.rules import MonitoringRules


class MonitoringSettings(ServiceSettings):
    service_name: str = "monitoring"
    http_port: int = 8003

    # The kap.monitoring.vitals.v1 consumer takes readings in batches: one database
    # transaction and one offset commit per batch (see entrypoints.vitals_batch).
    vitals_consumer_enabled: bool = True
    # A group of its own: in one group with the event subscribers, each of their joins
    # and leaves would stop and rebalance the high-volume vitals stream too.
    vitals_consumer_group: str = "monitoring-vitals"
    vitals_batch_max_records: int = Field(default=5000, ge=1, le=50_000)
    # How long one poll waits for readings (it returns as soon as any are there; an empty
    # poll is followed by the next one, without faststream's idle sleep:
    # kap_shared.messaging.batches), so on a quiet topic it only sets how often the idle
    # consumer asks again.
    vitals_batch_timeout_ms: int = Field(default=20, ge=1)
    # A second, short read right after a batch's poll (kap_shared.messaging.batches)
    # when the batch is at least this old (monitoring is behind): it takes the answer
    # aiokafka prefetched meanwhile, so under load a batch holds what was produced up to
    # its start, not up to the previous batch's (about one batch time off every
    # reading's wait). It returns on arrival. A fresher batch is not topped up: the
    # read would mostly wait for readings not produced yet. 0: off.
    vitals_batch_top_up_ms: int = Field(default=10, ge=0)
    vitals_max_partition_fetch_bytes: int = Field(default=4 * 1024 * 1024, ge=1024)
    # Retries of a batch after a transient (database) error, before it is rewound and
    # redelivered; readings are never dead-lettered for a database outage.
    vitals_batch_retry_backoff_seconds: float = Field(default=0.5, ge=0)

    monitoring_rules: ClassVar[RulesFromFile[MonitoringRules]] = from_rules_file(MonitoringRules)
