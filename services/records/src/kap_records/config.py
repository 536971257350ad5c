"""Records settings: the platform's, the readings' batch consumer's (VITALS_BATCH_*), and
where records' rules come from."""

from __future__ import annotations

from typing import ClassVar

from kap_shared.messaging.linger import READ_MODEL_LINGER_MS
from kap_shared.rules import RulesFromFile, from_rules_file
from kap_shared.settings import LingerMs, ServiceSettings, VitalsBatchSettings

from .domain.rules import RecordsRules


class RecordsSettings(ServiceSettings, VitalsBatchSettings):
    service_name: str = "records"
    http_port: int = 8005
    # A read model: its work then stays clear of the alert path (kap_shared.messaging.linger).
    consumer_linger_ms: LingerMs = READ_MODEL_LINGER_MS

    records_rules: ClassVar[RulesFromFile[RecordsRules]] = from_rules_file(RecordsRules)
