"""Scoring of PHQ-9, GAD-7 and PCL-5 (clinical rulebook section 3.1).

Pure functions: item answers in, totals and bands out. Used by intake for
baselines and by monitoring for outcome measures.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal

from ..events.enums import Instrument

# (upper bound inclusive, band) per instrument; rulebook §3.1.
PHQ9_BANDS = (
    (4, "none_minimal"),
    (9, "mild"),
    (14, "moderate"),
    (19, "moderately_severe"),
    (27, "severe"),
)
GAD7_BANDS = ((4, "minimal"), (9, "mild"), (14, "moderate"), (21, "severe"))
PCL5_PROBABLE_PTSD = 33  # default cut-off of the 31-33 range

ITEM_COUNT = {Instrument.PHQ9: 9, Instrument.GAD7: 7, Instrument.PCL5: 20}
ITEM_MAX = {Instrument.PHQ9: 3, Instrument.GAD7: 3, Instrument.PCL5: 4}
# PHQ-9 may be scored with up to 2 missing items, imputing the mean of the rest.
MAX_MISSING = {Instrument.PHQ9: 2, Instrument.GAD7: 0, Instrument.PCL5: 0}


class ScoringError(ValueError):
    """The answers cannot be scored; `field` names the offending item."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


@dataclass(frozen=True)
class Score:
    instrument: Instrument
    total: int
    band: str
    imputed_items: int = 0


def _band(total: int, bands: Sequence[tuple[int, str]]) -> str:
    for upper, name in bands:
        if total <= upper:
            return name
    return bands[-1][1]


def score(instrument: Instrument, items: Sequence[int | None], field: str = "items") -> Score:
    expected = ITEM_COUNT[instrument]
    if len(items) != expected:
        raise ScoringError(field, f"{instrument} has {expected} items, got {len(items)}")
    top = ITEM_MAX[instrument]
    for index, value in enumerate(items):
        if value is not None and not 0 <= value <= top:
            raise ScoringError(f"{field}[{index}]", f"answer must be 0-{top}, got {value}")
    answered = [v for v in items if v is not None]
    missing = expected - len(answered)
    if missing > MAX_MISSING[instrument]:
        raise ScoringError(
            field, f"{missing} unanswered items; {instrument} allows {MAX_MISSING[instrument]}"
        )
    if instrument is Instrument.PHQ9 and items[8] is None:
        # Item 9 (self-harm thoughts) is never imputed: MBC-1 needs the real answer.
        raise ScoringError(f"{field}[8]", "PHQ-9 item 9 must be answered (MBC-1)")
    raw = Decimal(sum(answered)) * expected / len(answered)
    total = int(raw.quantize(Decimal(1), rounding=ROUND_HALF_UP))
    if instrument is Instrument.PHQ9:
        band = _band(total, PHQ9_BANDS)
    elif instrument is Instrument.GAD7:
        band = _band(total, GAD7_BANDS)
    else:
        band = "probable_ptsd" if total >= PCL5_PROBABLE_PTSD else "below_threshold"
    return Score(instrument, total, band, imputed_items=missing)


# PCL-5 provisional DSM-5 PTSD diagnosis (rulebook 3.1): an item answered >= 2 counts
# as endorsed; at least 1 B item (1-5), 1 C item (6-7), 2 D items (8-14) and 2 E items
# (15-20). Clusters as 0-based item slices.
PCL5_ENDORSED_AT = 2
PCL5_CLUSTERS: dict[str, tuple[slice, int]] = {
    "B": (slice(0, 5), 1),
    "C": (slice(5, 7), 1),
    "D": (slice(7, 14), 2),
    "E": (slice(14, 20), 2),
}


def pcl5_provisional_ptsd(
    items: Sequence[int],
    endorsed_at: int = PCL5_ENDORSED_AT,
    clusters: Mapping[str, tuple[slice, int]] = PCL5_CLUSTERS,
) -> bool:
    """True when the 20 PCL-5 answers meet the provisional DSM-5 PTSD rule."""
    if len(items) != ITEM_COUNT[Instrument.PCL5]:
        raise ScoringError("pcl5", f"PCL-5 has 20 items, got {len(items)}")
    return all(
        sum(1 for answer in items[part] if answer >= endorsed_at) >= needed
        for part, needed in clusters.values()
    )
