"""Records' rules (clinical rulebook 1.5, SPR-PMF-1, and SPR-MON-1's three blood
pressures), as configuration: every number is a field, overridable for the network
and per site with RULES_FILE.

| rule id | what | default | override key |
|---|---|---|---|
| `SPR-PMF-1` | the REMS Patient Monitoring Form of an esketamine dosing session is due | 7 calendar days after the session | `pmf_deadline_days` |
| `SPR-PMF-1` | reminders (PmfReminder) before the deadline | days 3, 5 and 6 | `pmf_reminder_days` |
| `SPR-MON-1` | the PMF's pre-dose BP: the last BP at most this long before the first device | 60 min | `pmf_pre_dose_bp_minutes` |
| `SPR-MON-1` | the PMF's "40 minutes after dosing" BP: the BP closest to 40 min within | 30-55 min | `pmf_bp_40_window_minutes` |
"""  # noqa: E501 - a table

from __future__ import annotations

from typing import Self

from pydantic import Field, model_validator

from kap_shared.rules import RulesModel

PMF_RULE = "SPR-PMF-1"


class RecordsRules(RulesModel):
    """Unknown keys and out-of-range values fail at start-up (kap_shared.rules)."""

    # Days are floats so that a test site can shorten them to seconds.
    pmf_deadline_days: float = Field(default=7, gt=0)
    pmf_reminder_days: tuple[float, ...] = (3, 5, 6)
    pmf_pre_dose_bp_minutes: float = Field(default=60, gt=0)
    pmf_bp_40_window_minutes: tuple[float, float] = (30, 55)

    @model_validator(mode="after")
    def _reminders_before_deadline(self) -> Self:
        for day in self.pmf_reminder_days:
            if not 0 <= day < self.pmf_deadline_days:
                raise ValueError("pmf_reminder_days must fall before pmf_deadline_days")
        low, high = self.pmf_bp_40_window_minutes
        if not 0 < low < high:
            raise ValueError("pmf_bp_40_window_minutes must be (low, high) with low < high")
        return self
