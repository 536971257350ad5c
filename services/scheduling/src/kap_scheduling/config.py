"""Scheduling settings: the platform's, plus where the scheduling rules come from."""

from __future__ import annotations

from typing import ClassVar

from kap_shared.rules import RulesFromFile, from_rules_file
from kap_shared.settings import ServiceSettings

from .domain.rules import SchedulingRules


class SchedulingSettings(ServiceSettings):
    service_name: str = "scheduling"
    http_port: int = 8002

    scheduling_rules: ClassVar[RulesFromFile[SchedulingRules]] = from_rules_file(SchedulingRules)
