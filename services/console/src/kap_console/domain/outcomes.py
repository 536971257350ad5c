"""PHQ-9 / GAD-7 trend against the baseline (clinical rulebook section 3.1):
response is a fall of at least 50 % from baseline, remission a total below 5
(PHQ-9 and GAD-7 alike). Pure: points in, the lines to draw out."""

from __future__ import annotations

from dataclasses import dataclass

RESPONSE_FRACTION = 0.5  # response: total <= 50 % of baseline
REMISSION_BELOW = 5  # remission: total < 5


@dataclass(frozen=True)
class Trend:
    instrument: str
    baseline: int | None
    points: list[tuple[str, int]]  # (ISO date, total)
    response_line: float | None
    remission_line: int

    @property
    def latest(self) -> int | None:
        return self.points[-1][1] if self.points else None

    @property
    def responded(self) -> bool:
        return (
            self.baseline is not None
            and self.latest is not None
            and self.latest <= self.baseline * RESPONSE_FRACTION
        )

    @property
    def remitted(self) -> bool:
        return self.latest is not None and self.latest < REMISSION_BELOW


def trend(instrument: str, baseline: int | None, points: list[tuple[str, int]]) -> Trend:
    return Trend(
        instrument=instrument,
        baseline=baseline,
        points=sorted(points),
        response_line=baseline * RESPONSE_FRACTION if baseline is not None else None,
        remission_line=REMISSION_BELOW,
    )
