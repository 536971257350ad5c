"""Screening thresholds are configuration: network defaults, overridable per site."""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from kap_intake.bootstrap import build
from kap_intake.config import IntakeSettings
from kap_shared.testing import service_client, token
from kap_shared.testing_ops import start_with_rules

from .conftest import REFERRAL, screening

SCREENING = screening(bp_systolic=145, bp_diastolic=85)


def _screen(client: Any, site_id: str) -> dict[str, Any]:
    headers = token("rn-1", "nurse", [site_id])
    referral = {**copy.deepcopy(REFERRAL), "site_id": site_id}
    patient_id = client.post("/patients", json=referral, headers=headers).json()["patient_id"]
    response = client.post(f"/patients/{patient_id}/screenings", json=SCREENING, headers=headers)
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


def test_SPR_PRE_5_threshold_overridden_for_one_site_only(tmp_path: Path) -> None:
    rules = tmp_path / "rules.json"
    rules.write_text(json.dumps({"sites": {"site-lenient": {"bp_systolic_review_above": 150}}}))
    with service_client(IntakeSettings, build, tmp_path, rules_file=rules) as client:
        default_site = _screen(client, "site-default")
        lenient_site = _screen(client, "site-lenient")
    assert (default_site["outcome"], default_site["reasons"]) == ("needs_review", ["SPR-PRE-5"])
    assert (lenient_site["outcome"], lenient_site["reasons"]) == ("eligible", [])


def test_network_override_applies_to_every_site(tmp_path: Path) -> None:
    rules = tmp_path / "rules.json"
    rules.write_text(json.dumps({"network": {"bp_systolic_review_above": 150}}))
    with service_client(IntakeSettings, build, tmp_path, rules_file=rules) as client:
        assert _screen(client, "site-x")["outcome"] == "eligible"


@pytest.mark.parametrize(
    ("document", "named"),
    [
        ({"network": {"gad7_follow_up": 10}}, "network.gad7_follow_up"),
        ({"network": {"phq9_item9_review_at": 0}}, "network.phq9_item9_review_at"),
        ({"sites": {"site-x": {"pcl5_endorsed_at": 5}}}, "sites.site-x.pcl5_endorsed_at"),
        ({"sites": {"site-x": {"bp_systolic_review": 150}}}, "sites.site-x.bp_systolic_review"),
    ],
    ids=["unknown network key", "network out of range", "site out of range", "unknown site key"],
)
def test_a_bad_rules_file_stops_intake_at_start_up_naming_the_key(
    tmp_path: Path, document: dict[str, Any], named: str
) -> None:
    with pytest.raises(ValidationError, match=re.escape(named)):
        start_with_rules(IntakeSettings, build, tmp_path, document)


def test_gad7_follow_up_threshold_overridden_per_site(tmp_path: Path) -> None:
    rules = tmp_path / "rules.json"
    rules.write_text(json.dumps({"sites": {"site-anxious": {"gad7_follow_up_at": 5}}}))
    with service_client(IntakeSettings, build, tmp_path, rules_file=rules) as client:
        # SCREENING has GAD-7 7 and BP 145/85 (SPR-PRE-5).
        assert _screen(client, "site-default")["reasons"] == ["SPR-PRE-5"]
        assert _screen(client, "site-anxious")["reasons"] == ["SPR-PRE-5", "SCR-GAD7-10"]
