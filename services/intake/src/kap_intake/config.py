"""Intake settings: the platform's, plus where the screening rules come from."""

from __future__ import annotations

from functools import cached_property

from kap_shared.rules import SiteRules
from kap_shared.settings import ServiceSettings

from .domain.rules import ScreeningRules


class IntakeSettings(ServiceSettings):
    service_name: str = "intake"
    http_port: int = 8001

    @cached_property
    def screening_rules(self) -> SiteRules[ScreeningRules]:
        """Rulebook defaults, overridden for the network and per site by RULES_FILE."""
        return SiteRules.load(ScreeningRules, self.rules_file)
