"""Intake settings: the platform's plus the screening rules' defaults."""

from __future__ import annotations

from pydantic import Field

from kap_shared.settings import ServiceSettings

from .domain.rules import ScreeningRules


class IntakeSettings(ServiceSettings):
    service_name: str = "intake"
    http_port: int = 8001
    screening_rules: ScreeningRules = Field(default_factory=ScreeningRules)
