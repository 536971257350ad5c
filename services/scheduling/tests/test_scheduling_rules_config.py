"""Rules are configuration: `SchedulingRules` carries the rulebook's defaults, a
RULES_FILE overrides them for the network and per site, a typo fails at start-up,
and every rule id is documented (domain docstring and the service README)."""

from __future__ import annotations

import json
import re
from datetime import timedelta
from pathlib import Path

import pytest
from pydantic import ValidationError

from kap_scheduling.bootstrap import build
from kap_scheduling.config import SchedulingSettings
from kap_scheduling.domain import rules as rules_module
from kap_scheduling.domain.rules import SchedulingRules
from kap_shared.events.enums import Phase, Route, Severity
from kap_shared.rules import SiteRules
from kap_shared.testing_ops import start_with_rules

README = Path(__file__).parents[1] / "README.md"
RULE_IDS = sorted(
    value
    for name, value in vars(rules_module).items()
    if name.isupper() and isinstance(value, str) and re.fullmatch(r"[A-Z]+(-[A-Z0-9]+)+", value)
)


def test_defaults_are_the_rulebooks() -> None:
    rules = SchedulingRules()
    assert rules.kap_min_preparation_sessions == 2  # KAP-1
    assert rules.min_preparation_sessions(Route.INTRANASAL_ESKETAMINE) == 0
    assert rules.min_preparation_sessions(Route.SUBLINGUAL) == 2
    assert rules.chair_check_in_minutes(Route.INTRANASAL_ESKETAMINE, Phase.DOSING) == 30
    assert rules.esketamine_induction_sessions == 8  # SPR-SCH-1
    assert rules.esketamine_chairs_per_prescriber is None  # SPR-CERT-2
    assert rules.min_chair_minutes(Route.INTRANASAL_ESKETAMINE) == ("SPR-SCH-4", 120)
    assert rules.min_chair_minutes(Route.IV) == ("KAP-3", 180)
    assert (rules.esketamine_induction_weeks, rules.esketamine_induction_max_per_week) == (4, 2)
    assert rules.esketamine_later_max_per_week == 1  # SPR-SCH-2
    assert rules.ketamine_max_dosing_per_week == 3  # KET-SER-1
    assert rules.integration_due_after_hours(Route.IV) == 72  # KAP-2
    assert rules.integration_due_after_hours(Route.ORAL) == 168
    assert (rules.esketamine_food_fast_minutes, rules.esketamine_liquid_fast_minutes) == (120, 30)
    assert (rules.ketamine_solids_fast_minutes, rules.ketamine_clear_liquids_fast_minutes) == (
        240,
        120,
    )
    assert (rules.check_in_opens_minutes_before, rules.check_in_closes_minutes_after) == (60, 30)
    assert rules.hold_severities == frozenset(Severity)


def test_a_rules_file_overrides_the_network_and_each_site(tmp_path: Path) -> None:
    path = tmp_path / "rules.json"
    path.write_text(
        json.dumps(
            {
                "network": {"kap_min_preparation_sessions": 3},
                "sites": {"site-south": {"integration_due_hours": 48}},
            }
        )
    )
    rules = SiteRules.load(SchedulingRules, path)
    assert rules.for_site("site-north").kap_min_preparation_sessions == 3
    south = rules.for_site("site-south")
    assert (south.kap_min_preparation_sessions, south.integration_due_hours) == (3, 48)
    assert rules.for_site("site-north").integration_due_hours == 72


@pytest.mark.parametrize(
    "document",
    [
        {"network": {"kap_min_prep_sessions": 3}},
        {"sites": {"site-a": {"integration_due_hours": -1}}},
        {"sites": {"site-a": {"hold_severities": ["panic"]}}},
    ],
    ids=["unknown key", "negative hours", "unknown severity"],
)
def test_a_bad_rules_file_fails_at_start_up(tmp_path: Path, document: dict[str, object]) -> None:
    with pytest.raises(ValidationError, match=r"(network|sites\.site-a)\.\w+"):
        start_with_rules(SchedulingSettings, build, tmp_path, document)


def test_rules_are_immutable() -> None:
    with pytest.raises(ValidationError):
        SchedulingRules().kap_min_preparation_sessions = 0  # type: ignore[misc]


def test_deadline_hours_may_be_fractions_for_short_test_deadlines() -> None:
    rules = SchedulingRules(integration_due_hours=0.004)
    assert timedelta(hours=rules.integration_due_after_hours(Route.IV)) == timedelta(seconds=14.4)


@pytest.mark.parametrize("rule_id", RULE_IDS)
def test_every_rule_id_is_documented_in_the_domain_docstring_and_the_readme(rule_id: str) -> None:
    assert f"`{rule_id}`" in (rules_module.__doc__ or "")
    assert f"`{rule_id}`" in README.read_text()


def test_the_rule_ids_are_the_expected_ones() -> None:
    assert len(RULE_IDS) == 33
    assert {"SCH-PLAN-1", "SPR-ENR-1", "SPR-CERT-1", "KAP-1", "SPR-SCH-2", "SCH-DIS-1"} <= set(
        RULE_IDS
    )
