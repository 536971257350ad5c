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
from kap_shared.testing import TEST_SECRET, bad_rules_files

BAD_RULES = bad_rules_files("hr_sustained_seconds")


@pytest.mark.parametrize(
    ("document", "named"),
    [(document, named) for _, document, named in BAD_RULES],
    ids=[case for case, _, _ in BAD_RULES],
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
