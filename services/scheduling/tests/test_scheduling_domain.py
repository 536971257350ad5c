"""Scheduling's pure domain: care-team choice and protocols by route."""

from __future__ import annotations

import pytest

from kap_scheduling.domain.care_team import Candidate, CareTeam, choose_care_team
from kap_scheduling.domain.protocols import PROTOCOL_BY_ROUTE, protocol_for
from kap_shared.events.enums import Role, Route

RX, TH, NURSE = Role.PRESCRIBER, Role.THERAPIST, Role.NURSE


def test_least_loaded_prescriber_and_therapist_are_chosen() -> None:
    team = choose_care_team(
        [
            Candidate("rx-a", RX, 5),
            Candidate("rx-b", RX, 2),
            Candidate("rx-c", RX, 3),
            Candidate("th-a", TH, 1),
            Candidate("th-b", TH, 0),
        ]
    )
    assert team == CareTeam(prescriber_id="rx-b", therapist_id="th-b")


def test_ties_are_broken_by_clinician_id() -> None:
    team = choose_care_team(
        [
            Candidate("rx-z", RX, 1),
            Candidate("rx-m", RX, 1),
            Candidate("th-q", TH, 0),
            Candidate("th-c", TH, 0),
        ]
    )
    assert team == CareTeam("rx-m", "th-c")


def test_other_roles_never_join_the_care_team() -> None:
    team = choose_care_team(
        [Candidate("nu-a", NURSE, 0), Candidate("rx-a", RX, 9), Candidate("th-a", TH, 9)]
    )
    assert team == CareTeam("rx-a", "th-a")


@pytest.mark.parametrize(
    "candidates",
    [
        [],
        [Candidate("rx-a", RX, 0)],
        [Candidate("th-a", TH, 0)],
        [Candidate("rx-a", RX, 0), Candidate("nu-a", NURSE, 0)],
    ],
    ids=["nobody", "no therapist", "no prescriber", "nurse is not a therapist"],
)
def test_no_team_when_a_role_is_missing(candidates: list[Candidate]) -> None:
    assert choose_care_team(candidates) is None


@pytest.mark.parametrize(
    ("route", "name", "dosing_sessions"),
    [
        (Route.IV, "ketamine_iv_induction", 6),
        (Route.IM, "ketamine_iv_induction", 6),
        (Route.INTRANASAL_ESKETAMINE, "esketamine_trd", 12),
        (Route.SUBLINGUAL, "kap_sublingual", 6),
        (Route.ORAL, "kap_sublingual", 6),
    ],
)
def test_protocol_by_route(route: Route, name: str, dosing_sessions: int) -> None:
    protocol = protocol_for(route)
    assert (protocol.name, protocol.planned_dosing_sessions) == (name, dosing_sessions)


def test_every_contract_route_has_a_protocol() -> None:
    assert set(PROTOCOL_BY_ROUTE) == set(Route)


def test_esketamine_protocol_is_twice_weekly_then_weekly() -> None:
    # SPR-SCH-2: weeks 1-4 twice weekly (8) + weeks 5-8 weekly (4) = 12 dosing sessions.
    assert protocol_for(Route.INTRANASAL_ESKETAMINE).planned_dosing_sessions == 4 * 2 + 4 * 1
