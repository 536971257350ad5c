"""Choosing the care team: one prescriber and one therapist at the patient's site."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from kap_shared.events.enums import Role


@dataclass(frozen=True)
class Candidate:
    clinician_id: str
    role: Role
    active_plans: int


@dataclass(frozen=True)
class CareTeam:
    prescriber_id: str
    therapist_id: str


def choose_care_team(candidates: Sequence[Candidate]) -> CareTeam | None:
    """The least-loaded prescriber and therapist (ties broken by id), or None
    when the site lacks either role."""
    best: Mapping[Role, Candidate | None] = {
        role: min(
            (c for c in candidates if c.role is role),
            key=lambda c: (c.active_plans, c.clinician_id),
            default=None,
        )
        for role in (Role.PRESCRIBER, Role.THERAPIST)
    }
    prescriber, therapist = best[Role.PRESCRIBER], best[Role.THERAPIST]
    if prescriber is None or therapist is None:
        return None
    return CareTeam(prescriber.clinician_id, therapist.clinician_id)
