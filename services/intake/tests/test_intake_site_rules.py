"""Screening thresholds are configuration: network defaults, overridable per site."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

from kap_intake.bootstrap import build
from kap_intake.config import IntakeSettings
from kap_shared.testing import service_client, token

from .conftest import REFERRAL

SCREENING: dict[str, Any] = {
    "route": "iv",
    "contraindications": [],
    "phq9": [1, 1, 1, 1, 1, 1, 1, 1, 0],
    "gad7": [1, 1, 1, 1, 1, 1, 1],
    "vitals": {"bp_systolic": 145, "bp_diastolic": 85, "heart_rate": 70},
}


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
