"""A bad RULES_FILE stops monitoring at start-up, naming the key (kap_shared.rules)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from kap_monitoring.bootstrap import build
from kap_monitoring.config import MonitoringSettings
from kap_shared.testing_ops import bad_rules_params, start_with_rules

KEY = "hr_sustained_seconds"  # a rule whose minimum is above 0


@pytest.mark.parametrize(("document", "named"), bad_rules_params(KEY))
def test_a_bad_rules_file_fails_at_start_up_naming_the_key(
    tmp_path: Path, document: dict[str, Any], named: str
) -> None:
    with pytest.raises(ValidationError, match=re.escape(named)):
        start_with_rules(MonitoringSettings, build, tmp_path, document)


def test_a_valid_override_at_the_boundary_starts(tmp_path: Path) -> None:
    start_with_rules(MonitoringSettings, build, tmp_path, {"sites": {"site-x": {KEY: 1}}})
