"""Rulebook defaults that more than one service applies (clinical rulebook).

Each service still exposes them as configuration (its own rules model, overridable
per site); only the default lives here, so the two cannot drift apart.
"""

# SPR-PRE-5: BP "> 140/90" (strict) needs a prescriber's decision: at screening
# (intake: needs review) and before dosing (monitoring: warning, dosing waits).
SPR_PRE_5_SYSTOLIC_ABOVE = 140
SPR_PRE_5_DIASTOLIC_ABOVE = 90

# GAD-7 ">= 10 = refer for further evaluation" (rulebook 3.1): flagged at screening
# (intake) and on later measures.
GAD7_FOLLOW_UP_AT = 10

# MBC-1: "any positive answer (>= 1) on PHQ-9 item 9 needs immediate clinical
# evaluation": needs review at screening (intake), a safety concern later (monitoring).
MBC_1_PHQ9_ITEM9_AT_LEAST = 1


def spr_pre_5_elevated(
    systolic: int | None,
    diastolic: int | None,
    *,
    systolic_above: int = SPR_PRE_5_SYSTOLIC_ABOVE,
    diastolic_above: int = SPR_PRE_5_DIASTOLIC_ABOVE,
) -> bool:
    """SPR-PRE-5: either pressure strictly above its limit (140/90 itself passes);
    a missing value is not evidence of elevation (the gates requiring a reading
    are separate rules)."""
    return (systolic is not None and systolic > systolic_above) or (
        diastolic is not None and diastolic > diastolic_above
    )


# MBC-2: "PHQ-9 total >= 20, or a rise of >= 5 from the previous score" [K].
MBC_2_PHQ9_TOTAL_AT_LEAST = 20
MBC_2_PHQ9_RISE_AT_LEAST = 5
# MBC-4: "GAD-7 >= 15, or PCL-5 rise >= 10 -> notify the therapist" [V bands / MCID].
MBC_4_GAD7_TOTAL_AT_LEAST = 15
MBC_4_PCL5_RISE_AT_LEAST = 10
