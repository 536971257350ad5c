"""Outcome measures (clinical rulebook 3.1, 3.3: MBC-1, MBC-3), pure.

Scoring itself is the platform's (`kap_shared.clinical.instruments`), shared with
intake so a baseline and a follow-up are scored the same way.
"""

from __future__ import annotations

from dataclasses import dataclass

from kap_shared.clinical.instruments import Score
from kap_shared.events.enums import Instrument

from .rules import MonitoringRules


@dataclass(frozen=True)
class Outcome:
    instrument: Instrument
    total: int
    band: str
    baseline_total: int | None
    # (total - baseline) / baseline, in percent: -50.0 means "halved".
    change_pct: float | None
    response: bool
    remission: bool


def outcome(score: Score, baseline_total: int | None, rules: MonitoringRules) -> Outcome:
    """MBC-3: change from baseline, response (>= 50 % drop) and remission (PHQ-9 < 5).

    Response needs a baseline above zero (a drop from 0 is not measurable); remission
    is defined for the PHQ-9 only (rulebook 3.1) and is False for other instruments.
    """
    change_pct: float | None = None
    response = False
    if baseline_total is not None and baseline_total > 0:
        change_pct = round((score.total - baseline_total) / baseline_total * 100, 1)
        # Compared in integers, so "exactly 50 %" is exact.
        drop = (baseline_total - score.total) * 100
        response = drop >= rules.response_drop_pct_at_least * baseline_total
    remission = score.instrument is Instrument.PHQ9 and score.total < rules.phq9_remission_below
    return Outcome(
        instrument=score.instrument,
        total=score.total,
        band=score.band,
        baseline_total=baseline_total,
        change_pct=change_pct,
        response=response,
        remission=remission,
    )
