"""PHI never enters a log line (CONTRACT section 1, PHI rule).

What counts as PHI is read from intake's tables (the only place PHI is stored: the
columns marked with `kap_shared.phi.phi_column`), not from a copy of the list."""

from __future__ import annotations

import json
from typing import Any

import structlog

from kap_intake.adapters.tables import REGISTRY
from kap_shared.logging import drop_phi
from kap_shared.phi import PHI_INFO_KEY

# Every PHI column of intake, with a value it could hold.
INTAKE_PHI_COLUMNS = sorted(
    column.name
    for table in REGISTRY.metadata.tables.values()
    for column in table.columns
    if column.info.get(PHI_INFO_KEY)
)
SAMPLES = {
    "given_name": "Ada",
    "family_name": "Lovelace",
    "date_of_birth": "1815-12-10",
    "phone": "+44 20 7946 0000",
    "email": "ada@example.org",
    "review_note": "discussed childhood trauma",
}
# Other names the same facts go by in request bodies and code.
ALIASES = {
    "name": "Ada Lovelace",
    "full_name": "Ada King",
    "first_name": "Ada",
    "last_name": "Lovelace",
    "dob": "1815-12-10",
    "address": "12 St James's Square",
    "contact": "sister, +44 20 7946 0001",
    "note": "patient anxious about dosing",
    "notes": "discussed childhood trauma",
}
PHI = {name: SAMPLES.get(name, f"phi value of {name}") for name in INTAKE_PHI_COLUMNS} | ALIASES


def test_intake_declares_its_phi_columns() -> None:
    """Names and birth date included (they were not redacted before issue 9)."""
    assert {"given_name", "family_name", "date_of_birth", "phone", "email"} <= set(
        INTAKE_PHI_COLUMNS
    )


def test_drop_phi_redacts_every_intake_phi_column_and_alias_and_keeps_the_rest() -> None:
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
    line = logger.info(
        "intake.referral",
        patient_id="pt-1",
        given_name=PHI["given_name"],
        family_name=PHI["family_name"],
        email=PHI["email"],
        dob=PHI["dob"],
    )
    for key in ("given_name", "family_name", "email", "dob"):
        assert PHI[key] not in line
    assert json.loads(line)["patient_id"] == "pt-1"


def test_phi_nested_in_a_logged_dict_is_redacted() -> None:
    logger = structlog.wrap_logger(
        structlog.ReturnLogger(), processors=[drop_phi, structlog.processors.JSONRenderer()]
    )
    line = logger.warning(
        "intake.rejected",
        payload={"patient": {"family_name": PHI["family_name"]}, "email": PHI["email"]},
    )
    assert PHI["email"] not in line
    assert PHI["family_name"] not in line


def test_a_flood_of_aiokafka_errors_becomes_a_few_lines() -> None:
    """A broker outage: aiokafka repeats the same error hundreds of times a second."""
    import logging

    from kap_shared.logging import RateLimitFilter

    now = [0.0]
    limiter = RateLimitFilter(interval=30.0, clock=lambda: now[0])

    def record(name: str, msg: str) -> logging.LogRecord:
        return logging.LogRecord(name, logging.ERROR, __file__, 1, msg, ("127.0.0.1", 9092), None)

    passed = []
    for second in range(60):  # one minute at 600 lines a second from two loggers
        now[0] = float(second)
        for _ in range(300):
            for name in ("aiokafka.conn", "aiokafka.consumer.group_coordinator"):
                r = record(name, "Unable to connect to node %s:%s")
                if limiter.filter(r):
                    passed.append(r)
    # 300 a second per logger: the first line, then one 30 s later naming the 8,999 between.
    assert len(passed) == 4
    assert "8999 similar lines suppressed" in passed[-1].getMessage()
    # Our own loggers are never limited.
    ours = [record("kap_shared.service.runtime", "broker.down") for _ in range(100)]
    assert all(limiter.filter(r) for r in ours)
