"""`settle` (a calm batch of readings in one state update) against `step` reading by
reading: whenever settle takes a batch, stepping through it finds nothing and leaves
the same state, for any state and any site's limits; otherwise settle touches nothing.
So every rule (KET-MON-BP, -HR, -HR-LOW, -SPO2, -RR, -RR-SOFT, -SED, -SED-SOFT) fires
exactly as it would reading by reading."""

from __future__ import annotations

import copy
from datetime import UTC, datetime

from hypothesis import given, settings
from hypothesis import strategies as st

from kap_monitoring.domain.rules import MonitoringRules
from kap_monitoring.domain.vitals import (
    GROUP_RULES,
    US,
    Group,
    Reading,
    VitalsState,
    micros,
    settle,
    step,
)

T0 = micros(datetime(2026, 3, 2, 9, 0, tzinfo=UTC))
RULE_IDS = sorted({rule for rules in GROUP_RULES.values() for rule in rules})
SITES = [
    MonitoringRules(),
    # a site whose soft limits sit beyond its critical ones, and tighter elsewhere
    MonitoringRules(
        hr_recheck_above=130,
        bp_recheck_systolic_above=190,
        bp_recheck_diastolic_above=115,
        rr_soft_below=8,
        moaas_soft_at_or_below=0,
        spo2_recheck_below=92.0,
    ),
]


def values(low: int, high: int) -> st.SearchStrategy[int | None]:
    return st.one_of(st.none(), st.integers(low, high))


@st.composite
def batches(draw: st.DrawFn) -> list[Reading]:
    """Readings in time order (as `settle` gets them), values on both sides of limits."""
    count = draw(st.integers(1, 12))
    gaps = draw(st.lists(st.integers(0, 400), min_size=count, max_size=count))
    out, t = [], T0 + 3600 * US
    for n, gap in enumerate(gaps):
        t += gap * US
        out.append(
            Reading(
                f"r-{n:03d}",
                t,
                bp_systolic=draw(values(60, 230)),
                bp_diastolic=draw(values(30, 140)),
                heart_rate=draw(values(30, 150)),
                spo2=draw(st.one_of(st.none(), st.floats(70, 100))),
                respiratory_rate=draw(values(4, 30)),
                sedation_moaas=draw(values(0, 5)),
            )
        )
    return out


@st.composite
def states(draw: st.DrawFn) -> VitalsState:
    """Any state older than the batch: rules active or not, runs and rechecks pending."""
    earlier = st.one_of(st.none(), st.integers(T0, T0 + 3600 * US))
    later = st.one_of(st.none(), st.integers(T0, T0 + 7200 * US))
    state = VitalsState(
        active=set(draw(st.lists(st.sampled_from(RULE_IDS), max_size=4))),
        bp_above_t=draw(earlier),
        bp_recheck_until=draw(later),
        hr_run_t=draw(earlier),
        spo2_run_t=draw(earlier),
        hr_recheck_until=draw(later),
        spo2_recheck_until=draw(later),
    )
    for metric in ("bp_systolic", "heart_rate", "spo2"):
        if draw(st.booleans()):
            state.last_t[metric], state.latest[metric] = T0, 100.0
    return state


@settings(max_examples=200, deadline=None)
@given(batches(), states(), st.sampled_from(list(Group)), st.sampled_from(SITES))
def test_settle_is_step_by_step_whenever_it_takes_the_batch(
    readings: list[Reading], state: VitalsState, group: Group, rules: MonitoringRules
) -> None:
    settled, stepped = copy.deepcopy(state), copy.deepcopy(state)
    taken = settle(settled, readings, group, rules)
    findings = [f for r in readings if group in r.groups() for f in step(stepped, r, group, rules)]
    if taken:
        assert findings == []
        assert settled == stepped
    else:
        assert settled == state


def test_a_calm_batch_is_settled_in_one_update() -> None:
    rules = MonitoringRules()
    readings = [Reading(f"r-{n}", T0 + n * 5 * US, 128, 84, 72, 97.0, 14, 5) for n in range(100)]
    state = VitalsState(hr_run_t=T0 - US)
    assert all(settle(state, readings, group, rules) for group in Group)
    assert state.latest["heart_rate"] == 72
    assert state.last_t["sedation_moaas"] == readings[-1].t
    assert state.hr_run_t is None


def test_one_reading_outside_the_calm_range_sends_the_group_to_the_machines() -> None:
    rules = MonitoringRules()
    calm = [Reading(f"r-{n}", T0 + n * 5 * US, heart_rate=72) for n in range(10)]
    fast = Reading("r-fast", T0 + 60 * US, heart_rate=rules.hr_recheck_above + 1)
    state = VitalsState()
    assert not settle(state, [*calm, fast], Group.HR, rules)
    assert state == VitalsState()
    # ... and so does an active rule of the group, whose episode may end
    assert not settle(VitalsState(active={"KET-MON-HR"}), calm, Group.HR, rules)
