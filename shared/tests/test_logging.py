"""PHI never enters a log line (CONTRACT section 1, PHI rule)."""

from __future__ import annotations

import json
from typing import Any

import structlog

from kap_shared.logging import PHI_KEYS, drop_phi

PHI = {
    "name": "Ada Lovelace",
    "full_name": "Ada King",
    "first_name": "Ada",
    "last_name": "Lovelace",
    "date_of_birth": "1815-12-10",
    "dob": "1815-12-10",
    "phone": "+44 20 7946 0000",
    "email": "ada@example.org",
    "address": "12 St James's Square",
    "notes": "discussed childhood trauma",
    "contact": "sister, +44 20 7946 0001",
}


def test_drop_phi_redacts_every_phi_key_and_keeps_the_rest() -> None:
    assert set(PHI) == set(PHI_KEYS)
    event_dict: dict[str, Any] = {
        "event": "intake.patient_registered",
        "patient_id": "pt-7f3c2a",
        "site_id": "site-north",
        "correlation_id": "episode-1",
        **PHI,
    }
    result = drop_phi(None, "info", event_dict)
    assert {k: result[k] for k in PHI} == dict.fromkeys(PHI, "[redacted]")
    assert result["patient_id"] == "pt-7f3c2a"
    assert result["event"] == "intake.patient_registered"
    assert result["site_id"] == "site-north"


def test_drop_phi_leaves_a_clean_line_untouched() -> None:
    clean = {"event": "consumer.processed", "event_id": "e-1", "patient_id": "pt-1"}
    assert drop_phi(None, "info", dict(clean)) == clean


def test_rendered_log_line_contains_no_phi_values() -> None:
    logger = structlog.wrap_logger(
        structlog.ReturnLogger(), processors=[drop_phi, structlog.processors.JSONRenderer()]
    )
    line = logger.info("intake.referral", patient_id="pt-1", email=PHI["email"], dob=PHI["dob"])
    assert PHI["email"] not in line
    assert PHI["dob"] not in line
    assert json.loads(line)["patient_id"] == "pt-1"


def test_phi_nested_in_a_logged_dict_is_redacted() -> None:
    logger = structlog.wrap_logger(
        structlog.ReturnLogger(), processors=[drop_phi, structlog.processors.JSONRenderer()]
    )
    line = logger.warning(
        "intake.rejected", payload={"email": PHI["email"], "indications": ["trd"]}
    )
    assert PHI["email"] not in line
