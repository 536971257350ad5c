"""Treatment protocols by route (clinical rulebook sections 1.6, 2.2, 4)."""

from __future__ import annotations

from dataclasses import dataclass

from kap_shared.events.enums import Route


@dataclass(frozen=True)
class Protocol:
    name: str
    planned_dosing_sessions: int
    description: str
    # KAP-3: the therapist is at the chair for the whole dosing session (KAP, rulebook 4).
    # Esketamine is self-administered under a prescriber's and nurse's observation: the
    # patient's therapist is named on the session (the contract) but not held there.
    therapist_at_dosing: bool = True


KETAMINE_IV_INDUCTION = Protocol(
    "ketamine_iv_induction",
    6,
    "6 dosing sessions over 2-3 weeks, at most 3 a week (KET-SER-1); "
    "an integration session within 72 h of each (KAP-2)",
)
ESKETAMINE_TRD = Protocol(
    "esketamine_trd",
    12,
    "twice weekly in weeks 1-4, weekly in weeks 5-8; day 1 dose 56 mg "
    "(SPR-SCH-1/2, SPR-ADM-3); at least 2 h chair time per dosing session (SPR-SCH-4)",
    therapist_at_dosing=False,
)
KAP_SUBLINGUAL = Protocol(
    "kap_sublingual",
    6,
    "preparation, then dosing and integration sessions alternating (KAP-1, KAP-2, SCH-ALT-1)",
)

PROTOCOL_BY_ROUTE: dict[Route, Protocol] = {
    Route.IV: KETAMINE_IV_INDUCTION,
    Route.IM: KETAMINE_IV_INDUCTION,
    Route.INTRANASAL_ESKETAMINE: ESKETAMINE_TRD,
    Route.SUBLINGUAL: KAP_SUBLINGUAL,
    Route.ORAL: KAP_SUBLINGUAL,
}
PROTOCOLS: dict[str, Protocol] = {p.name: p for p in PROTOCOL_BY_ROUTE.values()}


def protocol_for(route: Route) -> Protocol:
    return PROTOCOL_BY_ROUTE[route]
