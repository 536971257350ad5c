"""Rules are configuration: network defaults, overridable per site."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from pydantic import BaseModel, Field, ValidationError

from kap_shared.rules import SiteRules


class ExampleRules(BaseModel):
    kap_min_preparation_sessions: int = Field(default=2, ge=0)  # KAP-1
    integration_due_hours: float = Field(default=72, gt=0)  # KAP-2


def test_defaults_without_a_file() -> None:
    rules = SiteRules.load(ExampleRules, None)
    assert rules.for_site("any").kap_min_preparation_sessions == 2


def test_network_and_site_overrides(tmp_path: Path) -> None:
    path = tmp_path / "rules.json"
    path.write_text(
        json.dumps(
            {
                "network": {"kap_min_preparation_sessions": 3},
                "sites": {"site-south": {"integration_due_hours": 48}},
            }
        )
    )
    rules = SiteRules.load(ExampleRules, path)
    north, south = rules.for_site("site-north"), rules.for_site("site-south")
    assert (north.kap_min_preparation_sessions, north.integration_due_hours) == (3, 72)
    assert (south.kap_min_preparation_sessions, south.integration_due_hours) == (3, 48)


def test_invalid_site_override_fails_at_load(tmp_path: Path) -> None:
    path = tmp_path / "rules.json"
    path.write_text(json.dumps({"sites": {"site-x": {"integration_due_hours": -1}}}))
    with pytest.raises(ValidationError, match="integration_due_hours"):
        SiteRules.load(ExampleRules, path)
