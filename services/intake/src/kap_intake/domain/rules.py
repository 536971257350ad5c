"""Screening rules (clinical rulebook sections 1.2, 2.7, 3.3).

Rule ids cited in `reasons` and in errors:
- `SCR-AGE-18`: under 18 -> ineligible (rulebook 2.7, "Age < 18 ABSOLUTE").
- `SCR-CI-ABS`: any absolute contraindication -> ineligible (rulebook 2.7).
- `SCR-CI-REL`: any relative contraindication -> needs review (rulebook 2.7).
- `SPR-PRE-5`: baseline BP above 140/90 (strict) -> needs review.
- `MBC-1`: PHQ-9 item 9 >= 1 -> needs review, whatever the total.

Follow-up flags: cited in `reasons`, they do not change the outcome:
- `SCR-GAD7-10`: GAD-7 total >= 10 -> refer for further evaluation (rulebook 3.1).
- `SCR-PCL5-DX`: PCL-5 answers meet the provisional DSM-5 PTSD rule (rulebook 3.1:
  item >= 2 endorsed; >= 1 B, >= 1 C, >= 2 D, >= 2 E).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from pydantic import Field

from kap_shared.clinical.instruments import PCL5_CLUSTERS, PCL5_ENDORSED_AT, pcl5_provisional_ptsd
from kap_shared.clinical.thresholds import (
    GAD7_FOLLOW_UP_AT,
    MBC_1_PHQ9_ITEM9_AT_LEAST,
    SPR_PRE_5_DIASTOLIC_ABOVE,
    SPR_PRE_5_SYSTOLIC_ABOVE,
    spr_pre_5_elevated,
)
from kap_shared.events.enums import ContraindicationClass, ScreeningOutcome
from kap_shared.rules import RulesModel

AGE = "SCR-AGE-18"
ABSOLUTE_CI = "SCR-CI-ABS"
RELATIVE_CI = "SCR-CI-REL"
PRE_DOSE_BP = "SPR-PRE-5"
SELF_HARM = "MBC-1"
ANXIETY_FOLLOW_UP = "SCR-GAD7-10"
PTSD_PROVISIONAL = "SCR-PCL5-DX"

ABSOLUTE = ContraindicationClass.ABSOLUTE
RELATIVE = ContraindicationClass.RELATIVE

# The contraindication checklist, classed as in rulebook section 2.7.
CONTRAINDICATIONS: dict[str, ContraindicationClass] = {
    "aneurysmal_vascular_disease": ABSOLUTE,
    "arteriovenous_malformation": ABSOLUTE,
    "intracerebral_haemorrhage": ABSOLUTE,
    "hypersensitivity": ABSOLUTE,
    "current_psychosis": ABSOLUTE,
    "current_mania": ABSOLUTE,
    "uncontrolled_hypertension": ABSOLUTE,
    "recent_mi_or_stroke": ABSOLUTE,
    "unstable_angina": ABSOLUTE,
    "uncontrolled_arrhythmia": ABSOLUTE,
    "pregnancy_or_breastfeeding": ABSOLUTE,
    "family_history_psychosis": RELATIVE,
    "ischaemic_heart_disease": RELATIVE,
    "cerebrovascular_disease": RELATIVE,
    "hypertensive_encephalopathy": RELATIVE,
    "severe_lung_disease": RELATIVE,
    "severe_liver_disease": RELATIVE,
    "severe_heart_disease": RELATIVE,
    "seizure_disorder": RELATIVE,
    "substance_use_disorder": RELATIVE,
    "high_benzodiazepine_load": RELATIVE,
    "severe_personality_disorder": RELATIVE,
}


class ScreeningRules(RulesModel):
    """Configurable thresholds with the rulebook's defaults (unknown keys and
    out-of-range values fail at start-up)."""

    # SCR-AGE-18: adults only (rulebook 2.7).
    minimum_age_years: int = Field(default=18, ge=0, le=120)
    # SPR-PRE-5: "> 140/90" is strict: 140/90 itself passes.
    bp_systolic_review_above: int = Field(default=SPR_PRE_5_SYSTOLIC_ABOVE, gt=0, lt=400)
    bp_diastolic_review_above: int = Field(default=SPR_PRE_5_DIASTOLIC_ABOVE, gt=0, lt=300)
    # MBC-1: any positive answer on PHQ-9 item 9.
    phq9_item9_review_at: int = Field(default=MBC_1_PHQ9_ITEM9_AT_LEAST, ge=1, le=3)
    # SCR-GAD7-10: GAD-7 ">= 10 = refer for further evaluation" [V].
    gad7_follow_up_at: int = Field(default=GAD7_FOLLOW_UP_AT, ge=1, le=21)
    # SCR-PCL5-DX: a PCL-5 item counts as endorsed at >= 2 [V/S].
    pcl5_endorsed_at: int = Field(default=PCL5_ENDORSED_AT, ge=1, le=4)


@dataclass(frozen=True)
class ScreeningFacts:
    age_years: int
    contraindications: Sequence[str]
    phq9_item9: int
    bp_systolic: int
    bp_diastolic: int
    gad7_total: int = 0
    pcl5_items: Sequence[int] | None = None


@dataclass(frozen=True)
class ScreeningDecision:
    outcome: ScreeningOutcome
    reasons: tuple[str, ...]


def decide(facts: ScreeningFacts, rules: ScreeningRules) -> ScreeningDecision:
    """Absolute findings make the patient ineligible; relative ones need a prescriber."""
    ineligible: list[str] = []
    review: list[str] = []
    if facts.age_years < rules.minimum_age_years:
        ineligible.append(AGE)
    classes = {CONTRAINDICATIONS[code] for code in facts.contraindications}
    if ABSOLUTE in classes:
        ineligible.append(ABSOLUTE_CI)
    if RELATIVE in classes:
        review.append(RELATIVE_CI)
    if spr_pre_5_elevated(
        facts.bp_systolic,
        facts.bp_diastolic,
        systolic_above=rules.bp_systolic_review_above,
        diastolic_above=rules.bp_diastolic_review_above,
    ):
        review.append(PRE_DOSE_BP)
    if facts.phq9_item9 >= rules.phq9_item9_review_at:
        review.append(SELF_HARM)
    flags = tuple(follow_ups(facts, rules))
    if ineligible:
        return ScreeningDecision(ScreeningOutcome.INELIGIBLE, tuple(ineligible + review) + flags)
    if review:
        return ScreeningDecision(ScreeningOutcome.NEEDS_REVIEW, tuple(review) + flags)
    return ScreeningDecision(ScreeningOutcome.ELIGIBLE, flags)


def follow_ups(facts: ScreeningFacts, rules: ScreeningRules) -> list[str]:
    """Findings the care team follows up (cited in `reasons`); the outcome stands."""
    found: list[str] = []
    if facts.gad7_total >= rules.gad7_follow_up_at:
        found.append(ANXIETY_FOLLOW_UP)
    if facts.pcl5_items is not None and pcl5_provisional_ptsd(
        facts.pcl5_items, rules.pcl5_endorsed_at, PCL5_CLUSTERS
    ):
        found.append(PTSD_PROVISIONAL)
    return found
