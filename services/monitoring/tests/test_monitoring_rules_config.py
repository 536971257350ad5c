"""A bad RULES_FILE stops monitoring at start-up, naming the key (kap_shared.rules)."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from kap_monitoring.bootstrap import build
from kap_monitoring.config import MonitoringSettings
from kap_shared.testing import TEST_SECRET

CASES: list[tuple[dict[str, Any], str]] = [
    ({"network": {"no_such_rule": 1}}, "network.no_such_rule"),
    ({"sites": {"site-x": {"no_such_rule": 1}}}, "sites.site-x.no_such_rule"),
    ({"network": {"KEY": 0}}, "network.KEY"),
    ({"sites": {"site-x": {"KEY": 0}}}, "sites.site-x.KEY"),
    ({"site": {}}, "site"),
]


def _cases(key: str) -> list[tuple[dict[str, Any], str]]:
    return [
        (json.loads(json.dumps(document).replace("KEY", key)), named.replace("KEY", key))
        for document, named in CASES
    ]


@pytest.mark.parametrize(
    ("document", "named"),
    _cases("hr_sustained_seconds"),
    ids=[
        "unknown network key",
        "unknown site key",
        "network value out of range",
        "site value out of range",
        "unknown top-level key",
    ],
)
def test_a_bad_rules_file_fails_at_start_up_naming_the_key(
    tmp_path: Path, document: dict[str, Any], named: str
) -> None:
    path = tmp_path / "rules.json"
    path.write_text(json.dumps(document))
    settings = MonitoringSettings(var_dir=tmp_path, kap_jwt_secret=TEST_SECRET, rules_file=path)
    with pytest.raises(ValidationError, match=re.escape(named)):
        build(settings)


def test_a_valid_override_at_the_boundary_starts(tmp_path: Path) -> None:
    path = tmp_path / "rules.json"
    path.write_text(json.dumps({"sites": {"site-x": {"hr_sustained_seconds": 1}}}))
    settings = MonitoringSettings(var_dir=tmp_path, kap_jwt_secret=TEST_SECRET, rules_file=path)
    build(settings)
