"""Outcome measures (clinical rulebook 3.1, 3.3: MBC-1..4, GAD-7 referral, PCL-5
provisional diagnosis), pure.

Scoring itself is the platform's (`kap_shared.clinical.instruments`), shared with
intake so a baseline and a follow-up are scored the same way.
"""

from __future__ import annotations

from collections.abc import Sequence

from pydantic import BaseModel

from kap_shared.clinical.instruments import PCL5_CLUSTERS, Score, pcl5_provisional_ptsd
from kap_shared.events.enums import Instrument

from .rules import (
    MBC_2,
    MBC_4,
    MBC_GAD7_REFER,
    MBC_PCL5_PROVISIONAL,
    MonitoringRules,
)


class Outcome(BaseModel, frozen=True):
    """A measure's result as the contract's OutcomeRecorded carries it (MBC-3)."""

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


def pcl5_provisional(items: Sequence[int | None], rules: MonitoringRules) -> bool:
    """MBC-PCL5-PROVISIONAL: each DSM-5 cluster has enough endorsed items (>= 2); the
    rule is kap_shared's (intake screens with it), with this service's configured limits.
    An unanswered item is not endorsed."""
    clusters = {
        name: (part, minimum)
        for (name, (part, _)), minimum in zip(
            PCL5_CLUSTERS.items(), rules.pcl5_cluster_minimums, strict=True
        )
    }
    answers = [0 if v is None else v for v in items]
    return pcl5_provisional_ptsd(answers, rules.pcl5_item_endorsed_at_least, clusters)


def follow_ups(
    instrument: Instrument,
    total: int,
    items: Sequence[int | None],
    previous_total: int | None,
    rules: MonitoringRules,
) -> list[str]:
    """The measure rules this result triggers (rule ids, in a stable order). `previous_total`
    is the patient's previous score on the instrument (or the baseline)."""
    found: list[str] = []
    rise = total - previous_total if previous_total is not None else None
    if instrument is Instrument.PHQ9 and (
        total >= rules.mbc2_phq9_total_at_least
        or (rise is not None and rise >= rules.mbc2_phq9_rise_at_least)
    ):
        found.append(MBC_2)
    if (instrument is Instrument.GAD7 and total >= rules.mbc4_gad7_total_at_least) or (
        instrument is Instrument.PCL5 and rise is not None and rise >= rules.mbc4_pcl5_rise_at_least
    ):
        found.append(MBC_4)
    if instrument is Instrument.GAD7 and total >= rules.gad7_refer_at_least:
        found.append(MBC_GAD7_REFER)
    if instrument is Instrument.PCL5 and pcl5_provisional(items, rules):
        found.append(MBC_PCL5_PROVISIONAL)
    return found
