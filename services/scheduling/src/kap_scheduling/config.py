"""Scheduling settings: the platform's, plus where the scheduling rules come from."""

from __future__ import annotations

from functools import cached_property

from kap_shared.rules import SiteRules
from kap_shared.settings import ServiceSettings

from .domain.rules import SchedulingRules


class SchedulingSettings(ServiceSettings):
    service_name: str = "scheduling"
    http_port: int = 8002

    @cached_property
    def scheduling_rules(self) -> SiteRules[SchedulingRules]:
        """Rulebook defaults, overridden for the network and per site by RULES_FILE."""
        return SiteRules.load(SchedulingRules, self.rules_file)
