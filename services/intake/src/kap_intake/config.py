"""Intake settings: the platform's, plus where the screening rules come from."""

from __future__ import annotations

from typing import ClassVar

from kap_shared.rules import RulesFromFile, from_rules_file
from kap_shared.settings import ServiceSettings

from .domain.rules import ScreeningRules


class IntakeSettings(ServiceSettings):
    service_name: str = "intake"
    http_port: int = 8001

    screening_rules: ClassVar[RulesFromFile[ScreeningRules]] = from_rules_file(ScreeningRules)
