"""Screening rules (clinical rulebook 2.7, 1.2 SPR-PRE-5, 3.3 MBC-1): pure domain."""

from __future__ import annotations

from dataclasses import replace
from datetime import date
from typing import Any

import pytest

from kap_intake.domain.model import age_on
from kap_intake.domain.rules import (
    CONTRAINDICATIONS,
    ScreeningDecision,
    ScreeningFacts,
    ScreeningRules,
    decide,
)
from kap_shared.events.enums import ContraindicationClass, ScreeningOutcome

RULES = ScreeningRules()
ELIGIBLE = ScreeningOutcome.ELIGIBLE
REVIEW = ScreeningOutcome.NEEDS_REVIEW
INELIGIBLE = ScreeningOutcome.INELIGIBLE

ABSOLUTE_CODES = sorted(
    c for c, k in CONTRAINDICATIONS.items() if k is ContraindicationClass.ABSOLUTE
)
RELATIVE_CODES = sorted(
    c for c, k in CONTRAINDICATIONS.items() if k is ContraindicationClass.RELATIVE
)


# A 35-year-old without contraindications, suicidal ideation (PHQ-9 item 9 at 0),
# raised blood pressure, anxiety or PTSD scores: eligible.
HEALTHY = ScreeningFacts(
    age_years=35, contraindications=(), phq9_item9=0, bp_systolic=122, bp_diastolic=78
)


def decide_for(*, rules: ScreeningRules = RULES, **changes: Any) -> ScreeningDecision:
    """The decision for HEALTHY's facts with `changes` (ScreeningFacts' fields)."""
    return decide(replace(HEALTHY, **changes), rules)


def test_eligible_when_no_rule_fires_has_no_reasons() -> None:
    assert decide_for() == ScreeningDecision(ELIGIBLE, ())


# -- SCR-AGE-18 -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("born", "day", "years"),
    [
        (date(2008, 6, 15), date(2026, 6, 14), 17),  # 17 years 364 days
        (date(2008, 6, 15), date(2026, 6, 15), 18),  # the 18th birthday itself
        (date(2008, 6, 15), date(2026, 12, 31), 18),
        (date(2008, 1, 1), date(2025, 12, 31), 17),
        (date(1990, 12, 31), date(2026, 1, 1), 35),
        # Born on 29 February: in a common year the birthday is reached on 1 March.
        (date(2008, 2, 29), date(2026, 2, 28), 17),
        (date(2008, 2, 29), date(2026, 3, 1), 18),
        (date(2008, 2, 29), date(2028, 2, 29), 20),
    ],
)
def test_age_on_counts_whole_years(born: date, day: date, years: int) -> None:
    assert age_on(born, day) == years


def test_scr_age_18_ineligible_at_17_years_364_days() -> None:
    age = age_on(date(2008, 6, 15), date(2026, 6, 14))
    assert decide_for(age_years=age) == ScreeningDecision(INELIGIBLE, ("SCR-AGE-18",))


def test_scr_age_18_eligible_on_the_18th_birthday() -> None:
    age = age_on(date(2008, 6, 15), date(2026, 6, 15))
    assert decide_for(age_years=age) == ScreeningDecision(ELIGIBLE, ())


def test_scr_age_18_minimum_age_is_configurable() -> None:
    rules = ScreeningRules(minimum_age_years=21)
    assert decide_for(age_years=20, rules=rules).reasons == ("SCR-AGE-18",)
    assert decide_for(age_years=21, rules=rules).outcome is ELIGIBLE


# -- SCR-CI-ABS / SCR-CI-REL -----------------------------------------------------


@pytest.mark.parametrize(
    ("code", "expected"),
    [
        # Rulebook 2.7's suggested classes.
        ("aneurysmal_vascular_disease", ContraindicationClass.ABSOLUTE),
        ("hypersensitivity", ContraindicationClass.ABSOLUTE),
        ("current_psychosis", ContraindicationClass.ABSOLUTE),
        ("current_mania", ContraindicationClass.ABSOLUTE),
        ("uncontrolled_hypertension", ContraindicationClass.ABSOLUTE),
        ("recent_mi_or_stroke", ContraindicationClass.ABSOLUTE),
        ("pregnancy_or_breastfeeding", ContraindicationClass.ABSOLUTE),
        ("family_history_psychosis", ContraindicationClass.RELATIVE),
        ("ischaemic_heart_disease", ContraindicationClass.RELATIVE),
        ("hypertensive_encephalopathy", ContraindicationClass.RELATIVE),
        ("seizure_disorder", ContraindicationClass.RELATIVE),
        ("substance_use_disorder", ContraindicationClass.RELATIVE),
        ("high_benzodiazepine_load", ContraindicationClass.RELATIVE),
        ("severe_personality_disorder", ContraindicationClass.RELATIVE),
    ],
)
def test_contraindication_classes_follow_rulebook_2_7(
    code: str, expected: ContraindicationClass
) -> None:
    assert CONTRAINDICATIONS[code] is expected


@pytest.mark.parametrize("code", ABSOLUTE_CODES)
def test_scr_ci_abs_any_absolute_contraindication_is_ineligible(code: str) -> None:
    assert decide_for(contraindications=[code]) == ScreeningDecision(INELIGIBLE, ("SCR-CI-ABS",))


@pytest.mark.parametrize("code", RELATIVE_CODES)
def test_scr_ci_rel_any_relative_contraindication_needs_review(code: str) -> None:
    assert decide_for(contraindications=[code]) == ScreeningDecision(REVIEW, ("SCR-CI-REL",))


def test_scr_ci_abs_beats_relative_and_both_rules_are_listed() -> None:
    decision = decide_for(contraindications=["seizure_disorder", "current_mania"])
    assert decision.outcome is INELIGIBLE
    assert decision.reasons == ("SCR-CI-ABS", "SCR-CI-REL")


def test_several_relative_contraindications_cite_scr_ci_rel_once() -> None:
    decision = decide_for(contraindications=["seizure_disorder", "substance_use_disorder"])
    assert decision == ScreeningDecision(REVIEW, ("SCR-CI-REL",))


# -- SPR-PRE-5 (strictly above 140/90) ---------------------------------------------


@pytest.mark.parametrize(
    ("systolic", "diastolic", "outcome"),
    [
        (140, 90, ELIGIBLE),  # the threshold itself passes
        (139, 89, ELIGIBLE),
        (140, 60, ELIGIBLE),
        (110, 90, ELIGIBLE),
        (141, 90, REVIEW),  # systolic one above
        (140, 91, REVIEW),  # diastolic one above
        (141, 80, REVIEW),  # rulebook 5 example: 141/80 -> issue
        (120, 95, REVIEW),
        (185, 112, REVIEW),
    ],
)
def test_spr_pre_5_bp_boundary(systolic: int, diastolic: int, outcome: ScreeningOutcome) -> None:
    decision = decide_for(bp_systolic=systolic, bp_diastolic=diastolic)
    assert decision.outcome is outcome
    assert decision.reasons == (("SPR-PRE-5",) if outcome is REVIEW else ())


def test_spr_pre_5_thresholds_are_configurable() -> None:
    rules = ScreeningRules(bp_systolic_review_above=130, bp_diastolic_review_above=85)
    assert decide_for(bp_systolic=131, bp_diastolic=80, rules=rules).reasons == ("SPR-PRE-5",)
    assert decide_for(bp_systolic=130, bp_diastolic=85, rules=rules).outcome is ELIGIBLE


# -- MBC-1 (PHQ-9 item 9) -----------------------------------------------------------


@pytest.mark.parametrize(
    ("item9", "outcome"), [(0, ELIGIBLE), (1, REVIEW), (2, REVIEW), (3, REVIEW)]
)
def test_mbc_1_any_positive_item_9_needs_review(item9: int, outcome: ScreeningOutcome) -> None:
    decision = decide_for(phq9_item9=item9)
    assert decision.outcome is outcome
    assert decision.reasons == (("MBC-1",) if item9 else ())


# -- combinations: every rule that fired is listed, in a stable order ---------------


def test_every_review_rule_that_fired_is_listed() -> None:
    decision = decide_for(
        contraindications=["seizure_disorder"], bp_systolic=150, bp_diastolic=95, phq9_item9=1
    )
    assert decision == ScreeningDecision(REVIEW, ("SCR-CI-REL", "SPR-PRE-5", "MBC-1"))


def test_ineligible_lists_hard_stops_first_then_review_findings() -> None:
    decision = decide_for(
        age_years=16,
        contraindications=["current_psychosis", "seizure_disorder"],
        bp_systolic=160,
        bp_diastolic=100,
        phq9_item9=2,
    )
    assert decision.outcome is INELIGIBLE
    assert decision.reasons == ("SCR-AGE-18", "SCR-CI-ABS", "SCR-CI-REL", "SPR-PRE-5", "MBC-1")


def test_under_18_with_no_other_finding_cites_only_scr_age_18() -> None:
    assert decide_for(age_years=17, phq9_item9=0) == ScreeningDecision(INELIGIBLE, ("SCR-AGE-18",))


# -- follow-up flags: SCR-GAD7-10, SCR-PCL5-DX (rulebook 3.1); the outcome stands ----------


@pytest.mark.parametrize(("gad7", "flagged"), [(9, False), (10, True), (21, True)])
def test_SCR_GAD7_10_flags_a_gad7_of_10_or_more_without_changing_the_outcome(
    gad7: int, flagged: bool
) -> None:
    decision = decide_for(gad7_total=gad7)
    assert decision == ScreeningDecision(ELIGIBLE, ("SCR-GAD7-10",) if flagged else ())


def test_SCR_GAD7_10_threshold_is_configurable() -> None:
    rules = ScreeningRules(gad7_follow_up_at=15)
    assert decide_for(gad7_total=14, rules=rules).reasons == ()
    assert decide_for(gad7_total=15, rules=rules).reasons == ("SCR-GAD7-10",)


# B 1 of items 1-5, C 1 of 6-7, D 2 of 8-14, E 2 of 15-20: the minimum pattern.
PTSD_PATTERN = [2, 0, 0, 0, 0, 2, 0, 2, 2, 0, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0]


def test_SCR_PCL5_DX_flags_the_provisional_dsm5_pattern() -> None:
    assert decide_for(pcl5_items=PTSD_PATTERN).reasons == ("SCR-PCL5-DX",)


def test_SCR_PCL5_DX_items_answered_1_are_not_endorsed() -> None:
    below = [1 if answer == 2 else 0 for answer in PTSD_PATTERN]
    assert decide_for(pcl5_items=below).reasons == ()
    assert decide_for(pcl5_items=None).reasons == ()


def test_SCR_PCL5_DX_endorsement_level_is_configurable() -> None:
    strict = ScreeningRules(pcl5_endorsed_at=3)
    assert decide_for(pcl5_items=PTSD_PATTERN, rules=strict).reasons == ()
    lenient = ScreeningRules(pcl5_endorsed_at=1)
    below = [1 if answer == 2 else 0 for answer in PTSD_PATTERN]
    assert decide_for(pcl5_items=below, rules=lenient).reasons == ("SCR-PCL5-DX",)


def test_follow_up_flags_come_after_the_findings_that_decide_the_outcome() -> None:
    decision = decide_for(phq9_item9=1, gad7_total=12, pcl5_items=PTSD_PATTERN)
    assert decision == ScreeningDecision(REVIEW, ("MBC-1", "SCR-GAD7-10", "SCR-PCL5-DX"))
