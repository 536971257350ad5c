"""Records settings: the platform's, plus where records' rules come from."""

from __future__ import annotations

from functools import cached_property

from kap_shared.rules import SiteRules
from kap_shared.settings import ServiceSettings

from .domain.rules import RecordsRules


class RecordsSettings(ServiceSettings):
    service_name: str = "records"
    http_port: int = 8005

    @cached_property
    def records_rules(self) -> SiteRules[RecordsRules]:
        """Rulebook defaults, overridden for the network and per site by RULES_FILE."""
        return SiteRules.load(RecordsRules, self.rules_file)
