"""Intake's PHI columns and kap_shared's PHI vocabulary are the same set: a PHI column
added here without its name in `kap_shared.phi.PHI_COLUMNS` (and so in the log
redaction), or the other way round, fails."""

from __future__ import annotations

from kap_intake.adapters.tables import REGISTRY
from kap_shared.phi import PHI_COLUMNS, PHI_INFO_KEY


def marked_phi_columns() -> set[str]:
    return {
        column.name
        for table in REGISTRY.metadata.tables.values()
        for column in table.columns
        if column.info.get(PHI_INFO_KEY)
    }


def test_phi_columns_are_the_shared_vocabulary() -> None:
    assert marked_phi_columns() == PHI_COLUMNS


def test_identifiers_and_codes_are_not_phi() -> None:
    patients = REGISTRY.metadata.tables["patients"]
    assert not any(
        patients.columns[name].info.get(PHI_INFO_KEY)
        for name in ("patient_id", "site_id", "indications", "referral_source")
    )
