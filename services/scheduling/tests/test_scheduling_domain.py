"""Scheduling's pure domain: care-team choice and protocols by route."""

from __future__ import annotations

import pytest

from kap_scheduling.domain.care_team import Candidate, CareTeam, choose_care_team
from kap_scheduling.domain.protocols import PROTOCOL_BY_ROUTE, protocol_for
from kap_shared.events.enums import Role, Route

RX, TH, NURSE = Role.PRESCRIBER, Role.THERAPIST, Role.NURSE


@pytest.mark.parametrize(
    ("candidates", "team"),
    [
        (
            [("rx-a", RX, 5), ("rx-b", RX, 2), ("rx-c", RX, 3), ("th-a", TH, 1), ("th-b", TH, 0)],
            CareTeam(prescriber_id="rx-b", therapist_id="th-b"),
        ),
        (
            [("rx-z", RX, 1), ("rx-m", RX, 1), ("th-q", TH, 0), ("th-c", TH, 0)],
            CareTeam("rx-m", "th-c"),
        ),
        ([("nu-a", NURSE, 0), ("rx-a", RX, 9), ("th-a", TH, 9)], CareTeam("rx-a", "th-a")),
    ],
    ids=[
        "the least loaded prescriber and therapist",
        "ties broken by clinician id",
        "other roles never join",
    ],
)
def test_choose_care_team(candidates: list[tuple[str, Role, int]], team: CareTeam) -> None:
    assert choose_care_team([Candidate(*c) for c in candidates]) == team


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
