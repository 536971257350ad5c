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
