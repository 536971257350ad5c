"""Screening rules (clinical rulebook sections 1.2, 2.7, 3.3).

Rule ids cited in `reasons` and in errors:
- `SCR-AGE-18`: under 18 -> ineligible (rulebook 2.7, "Age < 18 ABSOLUTE").
- `SCR-CI-ABS`: any absolute contraindication -> ineligible (rulebook 2.7).
- `SCR-CI-REL`: any relative contraindication -> needs review (rulebook 2.7).
- `SPR-PRE-5`: baseline BP above 140/90 (strict) -> needs review.
- `MBC-1`: PHQ-9 item 9 >= 1 -> needs review, whatever the total.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from pydantic import BaseModel, Field

from kap_shared.clinical.thresholds import SPR_PRE_5_DIASTOLIC_ABOVE, SPR_PRE_5_SYSTOLIC_ABOVE
from kap_shared.events.enums import ContraindicationClass, ScreeningOutcome

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


class ScreeningRules(BaseModel):
    """Configurable thresholds with the rulebook's defaults."""

    minimum_age_years: int = Field(default=18, ge=0)
    # SPR-PRE-5: "> 140/90" is strict: 140/90 itself passes.
    bp_systolic_review_above: int = SPR_PRE_5_SYSTOLIC_ABOVE
    bp_diastolic_review_above: int = SPR_PRE_5_DIASTOLIC_ABOVE
    # MBC-1: any positive answer on PHQ-9 item 9.
    phq9_item9_review_at: int = 1


@dataclass(frozen=True)
class ScreeningFacts:
    age_years: int
    contraindications: Sequence[str]
    phq9_item9: int
    bp_systolic: int
    bp_diastolic: int


@dataclass(frozen=True)
class ScreeningDecision:
    outcome: ScreeningOutcome
    reasons: tuple[str, ...]


def decide(facts: ScreeningFacts, rules: ScreeningRules) -> ScreeningDecision:
    """Absolute findings make the patient ineligible; relative ones need a prescriber."""
    ineligible: list[str] = []
    review: list[str] = []
    if facts.age_years < rules.minimum_age_years:
        ineligible.append("SCR-AGE-18")
    classes = {CONTRAINDICATIONS[code] for code in facts.contraindications}
    if ABSOLUTE in classes:
        ineligible.append("SCR-CI-ABS")
    if RELATIVE in classes:
        review.append("SCR-CI-REL")
    if (
        facts.bp_systolic > rules.bp_systolic_review_above
        or facts.bp_diastolic > rules.bp_diastolic_review_above
    ):
        review.append("SPR-PRE-5")
    if facts.phq9_item9 >= rules.phq9_item9_review_at:
        review.append("MBC-1")
    if ineligible:
        return ScreeningDecision(ScreeningOutcome.INELIGIBLE, tuple(ineligible + review))
    if review:
        return ScreeningDecision(ScreeningOutcome.NEEDS_REVIEW, tuple(review))
    return ScreeningDecision(ScreeningOutcome.ELIGIBLE, ())
