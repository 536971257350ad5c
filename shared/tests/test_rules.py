"""Rules are configuration: network defaults, overridable per site; strict at load."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel, Field, ValidationError

from kap_shared.rules import RulesModel, SiteRules


class ExampleRules(RulesModel):
    kap_min_preparation_sessions: int = Field(default=2, ge=0)  # KAP-1
    integration_due_hours: float = Field(default=72, gt=0)  # KAP-2


def _write(tmp_path: Path, document: object) -> Path:
    path = tmp_path / "rules.json"
    path.write_text(json.dumps(document))
    return path


def test_defaults_without_a_file() -> None:
    rules = SiteRules.load(ExampleRules, None)
    assert rules.for_site("any").kap_min_preparation_sessions == 2


def test_network_and_site_overrides(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        {
            "network": {"kap_min_preparation_sessions": 3},
            "sites": {"site-south": {"integration_due_hours": 48}},
        },
    )
    rules = SiteRules.load(ExampleRules, path)
    north, south = rules.for_site("site-north"), rules.for_site("site-south")
    assert (north.kap_min_preparation_sessions, north.integration_due_hours) == (3, 72)
    assert (south.kap_min_preparation_sessions, south.integration_due_hours) == (3, 48)


@pytest.mark.parametrize(
    ("document", "named"),
    [
        (
            {"sites": {"site-x": {"integration_due_hours": -1}}},
            "sites.site-x.integration_due_hours",
        ),
        ({"sites": {"site-x": {"integration_due_hour": 4}}}, "sites.site-x.integration_due_hour"),
        ({"network": {"kap_min_prep": 3}}, "network.kap_min_prep"),
        ({"network": {"kap_min_preparation_sessions": -1}}, "network.kap_min_preparation_sessions"),
        ({"network": {"kap_min_preparation_sessions": "two"}}, "network.kap_min_preparation"),
        ({"site": {"site-x": {}}}, "site\n"),
        ({"sites": {"site-x": 3}}, "sites.site-x"),
    ],
    ids=[
        "site value out of range",
        "unknown site key",
        "unknown network key",
        "network value out of range",
        "network value of the wrong type",
        "unknown top-level key",
        "site not an object",
    ],
)
def test_a_bad_rules_file_fails_at_load_naming_the_key(
    tmp_path: Path, document: dict[str, Any], named: str
) -> None:
    with pytest.raises(ValidationError) as caught:
        SiteRules.load(ExampleRules, _write(tmp_path, document))
    assert named in str(caught.value)
    assert "RULES_FILE" in str(caught.value)


def test_boundary_values_are_accepted(tmp_path: Path) -> None:
    path = _write(tmp_path, {"network": {"kap_min_preparation_sessions": 0}})
    assert SiteRules.load(ExampleRules, path).for_site("x").kap_min_preparation_sessions == 0


def test_a_rules_model_that_accepts_unknown_keys_is_refused() -> None:
    class Lenient(BaseModel):
        threshold: int = 1

    with pytest.raises(TypeError, match="Lenient must reject unknown keys"):
        SiteRules.load(Lenient, None)


def test_rules_are_immutable() -> None:
    with pytest.raises(ValidationError):
        ExampleRules().kap_min_preparation_sessions = 5  # type: ignore[misc]
