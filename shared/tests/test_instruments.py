"""PHQ-9 / GAD-7 / PCL-5 scoring (clinical rulebook section 3.1, MBC-1)."""

from __future__ import annotations

import pytest

from kap_shared.clinical.instruments import Score, ScoringError, pcl5_provisional_ptsd, score
from kap_shared.events.enums import Instrument

PHQ9, GAD7, PCL5 = Instrument.PHQ9, Instrument.GAD7, Instrument.PCL5


def answers(total: int, count: int, top: int) -> list[int | None]:
    """`count` answers in 0..top summing to `total`, filled from the first item."""
    assert 0 <= total <= count * top
    items: list[int | None] = []
    remaining = total
    for _ in range(count):
        value = min(top, remaining)
        items.append(value)
        remaining -= value
    return items


def phq9_answers(total: int, item9: int = 0) -> list[int | None]:
    """PHQ-9 answers with the given total and a fixed item 9 (self-harm thoughts)."""
    return [*answers(total - item9, 8, 3), item9]


# --- PHQ-9 bands: both sides of every boundary -------------------------------------------


@pytest.mark.parametrize(
    ("total", "band"),
    [
        (0, "none_minimal"),
        (4, "none_minimal"),
        (5, "mild"),
        (9, "mild"),
        (10, "moderate"),
        (14, "moderate"),
        (15, "moderately_severe"),
        (19, "moderately_severe"),
        (20, "severe"),
        (27, "severe"),
    ],
)
def test_phq9_band_boundaries(total: int, band: str) -> None:
    item9 = 3 if total == 27 else 0
    result = score(PHQ9, phq9_answers(total, item9))
    assert result == Score(PHQ9, total, band, imputed_items=0)


def test_phq9_positive_item9_does_not_change_the_total_or_band_MBC_1() -> None:
    # Item 9 counts towards the total like any item; the alert is a separate rule (MBC-1).
    result = score(PHQ9, phq9_answers(4, item9=1))
    assert (result.total, result.band) == (4, "none_minimal")


# --- PHQ-9 missing items ------------------------------------------------------------------


def test_phq9_one_missing_item_imputes_mean_rounded_half_up() -> None:
    # 8 answered items sum to 4: 4 + 4/8 = 4.5 -> 5 (half up; banker's rounding would give 4,
    # which would also drop the patient from "mild" to "none_minimal").
    result = score(PHQ9, [1, 1, 1, 1, 0, 0, 0, None, 0])
    assert result == Score(PHQ9, 5, "mild", imputed_items=1)


def test_phq9_one_missing_item_imputation_rounds_up_not_down() -> None:
    # 8 answered sum to 15: 15 * 9/8 = 16.875 -> 17 (truncation would give 16).
    result = score(PHQ9, [2, 2, 2, 2, 2, 2, 2, None, 1])
    assert (result.total, result.imputed_items) == (17, 1)


def test_phq9_two_missing_items_impute_mean_of_answered_items() -> None:
    # 7 answered sum to 13 (mean 1.857): 13 + 2 * 1.857 = 16.71 -> 17.
    result = score(PHQ9, [3, 3, 2, 2, None, None, 1, 1, 1])
    assert result == Score(PHQ9, 17, "moderately_severe", imputed_items=2)


def test_phq9_two_missing_items_with_whole_mean() -> None:
    result = score(PHQ9, [2, 2, 2, 2, 2, 2, None, None, 2])
    assert result == Score(PHQ9, 18, "moderately_severe", imputed_items=2)


def test_phq9_imputation_can_move_the_band_across_a_boundary() -> None:
    # Raw answered sum 9 ("mild" if missing counted as 0) is really 9 * 9/7 = 11.57 -> 12.
    result = score(PHQ9, [2, 2, 2, 1, 1, None, None, 1, 0])
    assert (result.total, result.band) == (12, "moderate")


def test_phq9_three_missing_items_are_rejected() -> None:
    with pytest.raises(ScoringError) as exc:
        score(PHQ9, [2, None, 2, None, 2, None, 2, 2, 0], field="phq9")
    assert exc.value.field == "phq9"
    assert "3 unanswered" in exc.value.message


def test_phq9_item9_never_imputed_MBC_1() -> None:
    # Everything else answered: imputation would be allowed, but item 9 needs the real answer.
    with pytest.raises(ScoringError) as exc:
        score(PHQ9, [1, 1, 1, 1, 1, 1, 1, 1, None], field="phq9")
    assert exc.value.field == "phq9[8]"
    assert "MBC-1" in str(exc.value)
    assert str(exc.value).startswith("phq9[8]:")


def test_phq9_item9_missing_with_another_missing_item_is_still_rejected_MBC_1() -> None:
    with pytest.raises(ScoringError) as exc:
        score(PHQ9, [1, None, 1, 1, 1, 1, 1, 1, None], field="phq9")
    assert exc.value.field == "phq9[8]"


# --- out-of-range answers name the item ---------------------------------------------------


@pytest.mark.parametrize(
    ("instrument", "items", "bad_field"),
    [
        (PHQ9, [0, 0, 0, 4, 0, 0, 0, 0, 0], "phq9[3]"),
        (PHQ9, [-1, 0, 0, 0, 0, 0, 0, 0, 0], "phq9[0]"),
        (PHQ9, [0, 0, 0, 0, 0, 0, 0, 0, 4], "phq9[8]"),
        (GAD7, [0, 0, 0, 0, 0, 0, 4], "gad7[6]"),
        (PCL5, [0] * 19 + [5], "pcl5[19]"),
        (PCL5, [0, -1] + [0] * 18, "pcl5[1]"),
    ],
)
def test_out_of_range_answer_names_the_item_index(
    instrument: Instrument, items: list[int | None], bad_field: str
) -> None:
    field = bad_field.split("[")[0]
    with pytest.raises(ScoringError) as exc:
        score(instrument, items, field=field)
    assert exc.value.field == bad_field
    assert str(exc.value).startswith(f"{bad_field}:")


def test_scoring_error_is_a_value_error() -> None:
    # HTTP layers map ValueError to 422; ScoringError must stay one.
    with pytest.raises(ValueError, match=r"gad7\[0\]"):
        score(GAD7, [9, 0, 0, 0, 0, 0, 0], field="gad7")


def test_pcl5_accepts_its_own_item_maximum_of_4() -> None:
    assert score(PCL5, [4] * 20).total == 80


# --- GAD-7 --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("total", "band"),
    [
        (0, "minimal"),
        (4, "minimal"),
        (5, "mild"),
        (9, "mild"),
        (10, "moderate"),
        (14, "moderate"),
        (15, "severe"),
        (21, "severe"),
    ],
)
def test_gad7_band_boundaries(total: int, band: str) -> None:
    assert score(GAD7, answers(total, 7, 3)) == Score(GAD7, total, band)


def test_gad7_has_no_imputation_rule_so_a_missing_item_is_rejected() -> None:
    with pytest.raises(ScoringError) as exc:
        score(GAD7, [1, 1, 1, None, 1, 1, 1], field="gad7")
    assert exc.value.field == "gad7"


# --- PCL-5 --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("total", "band"),
    [(0, "below_threshold"), (32, "below_threshold"), (33, "probable_ptsd"), (80, "probable_ptsd")],
)
def test_pcl5_probable_ptsd_cut_off_33(total: int, band: str) -> None:
    assert score(PCL5, answers(total, 20, 4)) == Score(PCL5, total, band)


def test_pcl5_missing_item_is_rejected() -> None:
    with pytest.raises(ScoringError):
        score(PCL5, [*answers(40, 19, 4), None], field="pcl5")


# --- item counts --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("instrument", "count", "expected"),
    [
        (PHQ9, 8, 9),
        (PHQ9, 10, 9),
        (PHQ9, 0, 9),
        (GAD7, 9, 7),  # PHQ-9 answers sent as GAD-7
        (GAD7, 6, 7),
        (PCL5, 17, 20),  # the older PCL-C/PCL-M length
        (PCL5, 21, 20),
    ],
)
def test_wrong_item_count_is_rejected(instrument: Instrument, count: int, expected: int) -> None:
    with pytest.raises(ScoringError) as exc:
        score(instrument, [0] * count, field="answers")
    assert exc.value.field == "answers"
    assert f"{expected} items" in exc.value.message
    assert f"got {count}" in exc.value.message


# --- PCL-5 provisional DSM-5 diagnosis: each cluster at its minimum, and one short -----------

# B 1 of items 1-5, C 1 of 6-7, D 2 of 8-14, E 2 of 15-20, each endorsed at >= 2.
MINIMAL_PTSD = [2, 0, 0, 0, 0, 2, 0, 2, 2, 0, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0]


def test_pcl5_provisional_ptsd_with_every_cluster_at_its_minimum() -> None:
    assert pcl5_provisional_ptsd(MINIMAL_PTSD)


@pytest.mark.parametrize(
    "index", [0, 5, 7, 14], ids=["B short", "C short", "D one item", "E one item"]
)
def test_pcl5_provisional_ptsd_fails_when_a_cluster_is_one_short(index: int) -> None:
    items = list(MINIMAL_PTSD)
    items[index] = 1  # answered 1: below "endorsed" (>= 2)
    assert not pcl5_provisional_ptsd(items)


def test_pcl5_a_high_total_without_the_cluster_pattern_is_not_a_provisional_diagnosis() -> None:
    items = [4] * 5 + [0] * 2 + [4] * 7 + [4] * 6  # no C item endorsed; total 72
    assert score(PCL5, items).band == "probable_ptsd"
    assert not pcl5_provisional_ptsd(items)
