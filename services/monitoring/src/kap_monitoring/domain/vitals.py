"""Intra-session vital-sign rules as pure state machines (no I/O).

Readings are evaluated by their `recorded_at` (not by arrival). Each metric group
(BP, HR, SpO2, RR, sedation) has a small state machine; `step` feeds it one
reading and returns what changed:

- `Trigger`: a rule's condition became true: an *episode* starts, raise an alert;
- `Clear`: the values are back in range: the episode ends, resolve the alert;
- `Prompt`: ask the nurse for a measurement (the BP recheck of KET-MON-BP).

The compact `VitalsState` (persisted per session, a few numbers per group) makes
in-order evaluation O(1) per reading. A reading older than the newest one already
seen for its group is *late*: the group is then re-derived with `replay` over the
session's readings sorted by time, and the episodes it finds are reconciled with
the alerts already raised (see `handlers.vitals`).

Times are integer microseconds since the epoch, so boundaries such as "exactly
300 s" compare exactly.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any

from kap_shared.clinical.thresholds import spr_pre_5_elevated
from kap_shared.events.enums import ObservationKind, Severity

from .rules import (
    KET_MON_BP,
    KET_MON_HR,
    KET_MON_HR_LOW,
    KET_MON_RR,
    KET_MON_RR_SOFT,
    KET_MON_SED,
    KET_MON_SED_SOFT,
    KET_MON_SPO2,
    MonitoringRules,
)

US = 1_000_000
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
ONE_MICROSECOND = timedelta(microseconds=1)


def micros(value: datetime) -> int:
    """Exact microseconds since the epoch (a float timestamp would round)."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return (value - EPOCH) // ONE_MICROSECOND


def from_micros(value: int) -> datetime:
    return EPOCH + timedelta(microseconds=value)


class Group(StrEnum):
    """Metrics evaluated together; each has its own clock for late readings."""

    BP = "bp"
    HR = "heart_rate"
    SPO2 = "spo2"
    RR = "respiratory_rate"
    SED = "sedation_moaas"


GROUP_METRICS: dict[Group, tuple[str, ...]] = {
    Group.BP: ("bp_systolic", "bp_diastolic"),
    Group.HR: ("heart_rate",),
    Group.SPO2: ("spo2",),
    Group.RR: ("respiratory_rate",),
    Group.SED: ("sedation_moaas",),
}
GROUP_RULES: dict[Group, tuple[str, ...]] = {
    Group.BP: (KET_MON_BP,),
    Group.HR: (KET_MON_HR, KET_MON_HR_LOW),
    Group.SPO2: (KET_MON_SPO2,),
    Group.RR: (KET_MON_RR, KET_MON_RR_SOFT),
    Group.SED: (KET_MON_SED, KET_MON_SED_SOFT),
}
# Reading.groups() for each combination of present metric groups (bit i = i-th group).
_GROUPS_BY_MASK = tuple(
    tuple(g for i, g in enumerate(Group) if mask & (1 << i)) for mask in range(1 << len(Group))
)


@dataclass(slots=True)
class Reading:
    """One reading's values, as the rules see them (treated as immutable)."""

    reading_id: str
    t: int  # recorded_at, microseconds since the epoch
    bp_systolic: int | None = None
    bp_diastolic: int | None = None
    heart_rate: int | None = None
    spo2: float | None = None
    respiratory_rate: int | None = None
    sedation_moaas: int | None = None
    symptoms: tuple[str, ...] = ()
    # SPR-GOAL: a coded dissociation assessment and an optional CADSS total.
    dissociation: str | None = None
    cadss_total: int | None = None

    def mask(self) -> int:
        """The metric groups this reading has values for, as bits (bit i: the i-th Group)."""
        return (
            (1 if self.bp_systolic is not None or self.bp_diastolic is not None else 0)
            | (2 if self.heart_rate is not None else 0)
            | (4 if self.spo2 is not None else 0)
            | (8 if self.respiratory_rate is not None else 0)
            | (16 if self.sedation_moaas is not None else 0)
        )

    def groups(self) -> tuple[Group, ...]:
        """The metric groups this reading has values for."""
        return _GROUPS_BY_MASK[self.mask()]

    @property
    def recorded_at(self) -> datetime:
        return from_micros(self.t)


@dataclass(frozen=True, slots=True)
class Trigger:
    rule_id: str
    severity: Severity
    metric: str
    value: float
    threshold: float
    message: str
    t: int
    reading_id: str


@dataclass(frozen=True, slots=True)
class Clear:
    rule_id: str
    t: int
    reading_id: str


BP_RECHECK = ObservationKind.BP_RECHECK
HR_RECHECK = ObservationKind.HR_RECHECK
SPO2_RECHECK = ObservationKind.SPO2_RECHECK
# The rule whose soft limit asks for each recheck (rulebook section 2.4).
RECHECK_RULES = {BP_RECHECK: KET_MON_BP, HR_RECHECK: KET_MON_HR, SPO2_RECHECK: KET_MON_SPO2}


@dataclass(frozen=True, slots=True)
class Prompt:
    kind: ObservationKind
    t: int
    due_t: int
    reading_id: str

    @property
    def rule_id(self) -> str:
        return RECHECK_RULES[self.kind]


Finding = Trigger | Clear | Prompt


@dataclass(slots=True)
class VitalsState:
    """What the rules remember about one session, per metric group."""

    # Newest recorded_at and its value, per metric (the "latest vitals").
    last_t: dict[str, int] = field(default_factory=dict)
    latest: dict[str, float] = field(default_factory=dict)
    # KET-MON-BP: time of the newest reading above the critical limit, and until when
    # a recheck prompt is pending (no second prompt meanwhile).
    bp_above_t: int | None = None
    bp_recheck_until: int | None = None
    # KET-MON-HR / KET-MON-SPO2: start of the current run above/below the limit.
    hr_run_t: int | None = None
    spo2_run_t: int | None = None
    # Rules whose episode is in progress (their condition held and has not cleared).
    active: set[str] = field(default_factory=set)
    # SPR-GOAL: the newest dissociation assessment (by recorded_at) and its CADSS total.
    dissociation: str | None = None
    dissociation_t: int | None = None
    cadss_total: int | None = None
    # Section 2.4 recheck prompts (HR > 110, SpO2 < 94): pending until then.
    hr_recheck_until: int | None = None
    spo2_recheck_until: int | None = None

    # -- persistence (a JSON column) -------------------------------------------------

    def to_json(self) -> dict[str, Any]:
        return {
            "last_t": self.last_t,
            "latest": self.latest,
            "bp_above_t": self.bp_above_t,
            "bp_recheck_until": self.bp_recheck_until,
            "hr_run_t": self.hr_run_t,
            "spo2_run_t": self.spo2_run_t,
            "active": sorted(self.active),
            "dissociation": self.dissociation,
            "dissociation_t": self.dissociation_t,
            "cadss_total": self.cadss_total,
            "hr_recheck_until": self.hr_recheck_until,
            "spo2_recheck_until": self.spo2_recheck_until,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any] | None) -> VitalsState:
        if not data:
            return cls()
        return cls(
            last_t=dict(data.get("last_t", {})),
            latest=dict(data.get("latest", {})),
            bp_above_t=data.get("bp_above_t"),
            bp_recheck_until=data.get("bp_recheck_until"),
            hr_run_t=data.get("hr_run_t"),
            spo2_run_t=data.get("spo2_run_t"),
            active=set(data.get("active", ())),
            dissociation=data.get("dissociation"),
            dissociation_t=data.get("dissociation_t"),
            cadss_total=data.get("cadss_total"),
            hr_recheck_until=data.get("hr_recheck_until"),
            spo2_recheck_until=data.get("spo2_recheck_until"),
        )

    def assess_dissociation(self, reading: Reading) -> None:
        """SPR-GOAL: keep the newest coded dissociation assessment (late ones are older)."""
        if reading.dissociation is None:
            return
        if self.dissociation_t is None or reading.t >= self.dissociation_t:
            self.dissociation = reading.dissociation
            self.dissociation_t = reading.t
            self.cadss_total = reading.cadss_total

    def newest(self, group: Group) -> int | None:
        times = [self.last_t[m] for m in GROUP_METRICS[group] if m in self.last_t]
        return max(times) if times else None

    def is_late(self, reading: Reading, group: Group) -> bool:
        """Older than a reading of the same group already evaluated."""
        newest = self.newest(group)
        return newest is not None and reading.t < newest

    def adopt(self, other: VitalsState, group: Group) -> None:
        """Take `group`'s part of `other` (the result of a replay)."""
        for metric in GROUP_METRICS[group]:
            self.last_t.pop(metric, None)
            self.latest.pop(metric, None)
            if metric in other.last_t:
                self.last_t[metric] = other.last_t[metric]
                self.latest[metric] = other.latest[metric]
        if group is Group.BP:
            self.bp_above_t, self.bp_recheck_until = other.bp_above_t, other.bp_recheck_until
        elif group is Group.HR:
            self.hr_run_t, self.hr_recheck_until = other.hr_run_t, other.hr_recheck_until
        elif group is Group.SPO2:
            self.spo2_run_t, self.spo2_recheck_until = other.spo2_run_t, other.spo2_recheck_until
        rules = GROUP_RULES[group]
        self.active = {r for r in self.active if r not in rules} | (other.active & set(rules))


def _bp(systolic: int | None, diastolic: int | None) -> str:
    return (
        f"{systolic if systolic is not None else '-'}/{diastolic if diastolic is not None else '-'}"
    )


# KET-MON-BP's limits: (systolic, diastolic); a reading is above when either value is.
BpLimits = tuple[int, int]


def _bp_above(
    systolic: int | None, diastolic: int | None, limits: BpLimits
) -> tuple[str, int, int] | None:
    """The first value above its limit, systolic before diastolic: (metric, value, limit)."""
    if systolic is not None and systolic > limits[0]:
        return "bp_systolic", systolic, limits[0]
    if diastolic is not None and diastolic > limits[1]:
        return "bp_diastolic", diastolic, limits[1]
    return None


def _bp_limit(limits: BpLimits) -> str:
    return f"{limits[0]}/{limits[1]}"


def _minutes(seconds: int) -> str:
    return f"{seconds // 60} min" if seconds % 60 == 0 else f"{seconds} s"


# -- episodes: an alert when a rule's condition starts to hold, a Clear when it stops -----

SPO2_SENTINEL = f"{KET_MON_SPO2} sentinel"
SPO2_SUSTAINED = f"{KET_MON_SPO2} sustained"
# Each alert a metric rule raises (SpO2 has three): its rule, its severity and the metric it
# names (a BP alert names the one of its two metrics that crossed).
ALERT_KINDS: dict[str, tuple[str, Severity, str]] = {
    KET_MON_BP: (KET_MON_BP, Severity.CRITICAL, "bp_systolic"),
    KET_MON_HR_LOW: (KET_MON_HR_LOW, Severity.CRITICAL, "heart_rate"),
    KET_MON_HR: (KET_MON_HR, Severity.CRITICAL, "heart_rate"),
    KET_MON_SPO2: (KET_MON_SPO2, Severity.CRITICAL, "spo2"),
    SPO2_SENTINEL: (KET_MON_SPO2, Severity.CRITICAL, "spo2"),
    SPO2_SUSTAINED: (KET_MON_SPO2, Severity.CRITICAL, "spo2"),
    KET_MON_RR: (KET_MON_RR, Severity.CRITICAL, "respiratory_rate"),
    KET_MON_RR_SOFT: (KET_MON_RR_SOFT, Severity.WARNING, "respiratory_rate"),
    KET_MON_SED: (KET_MON_SED, Severity.CRITICAL, "sedation_moaas"),
    KET_MON_SED_SOFT: (KET_MON_SED_SOFT, Severity.WARNING, "sedation_moaas"),
}
# What each alert says: {value} is the reading's value,
# {threshold} the limit it crossed; a step passes any other field its wording names.
WORDING: dict[str, str] = {
    KET_MON_BP: "Blood pressure {bp} mmHg {why} (KET-MON-BP). Pause dosing and notify the "
    "prescriber now; emergency care if chest pain, severe headache, vision or neurological "
    "change.",
    KET_MON_HR_LOW: "Heart rate {value}/min below {threshold}/min (KET-MON-HR-LOW). Assess the "
    "patient and notify the prescriber now.",
    KET_MON_HR: "Heart rate above {threshold}/min for {duration} (now {value}/min) (KET-MON-HR). "
    "Assess the patient and notify the prescriber now.",
    SPO2_SENTINEL: "SpO2 {value:g} % below {threshold:g} %: a sentinel event (KET-MON-SPO2). "
    "Stop dosing, give oxygen, emergency pathway now.",
    KET_MON_SPO2: "SpO2 {value:g} % below {threshold:g} % (KET-MON-SPO2). Stop dosing, give "
    "oxygen and notify the prescriber now.",
    SPO2_SUSTAINED: "SpO2 below {threshold:g} % for {duration} (now {value:g} %) (KET-MON-SPO2). "
    "Stimulate the patient, give oxygen and notify the prescriber now.",
    KET_MON_RR: "Respiratory rate {value}/min below {threshold}/min (KET-MON-RR). Stimulate the "
    "patient, support the airway and notify the prescriber now.",
    KET_MON_RR_SOFT: "Respiratory rate {value}/min outside {low}-{high}/min (KET-MON-RR-SOFT). "
    "Watch the breathing and recheck within 5 minutes.",
    KET_MON_SED: "MOAA/S {value}: the patient does not respond (KET-MON-SED). Emergency pathway: "
    "airway, oxygen, call the prescriber now.",
    KET_MON_SED_SOFT: "MOAA/S {value}: sedation deeper than expected (KET-MON-SED-SOFT). "
    "Increase observation; recheck responsiveness and vitals.",
}


def _start(
    state: VitalsState, r: Reading, alert: str, value: float, threshold: float, **fields: Any
) -> Trigger:
    """The episode of `alert`'s rule starts with reading `r`: its Trigger, worded from
    WORDING (`fields` fill the wording in; a `metric` among them names the BP metric)."""
    rule, severity, metric = ALERT_KINDS[alert]
    state.active.add(rule)
    message = WORDING[alert].format(value=value, threshold=threshold, **fields)
    metric = fields.get("metric", metric)
    return Trigger(
        rule, severity, metric, float(value), float(threshold), message, r.t, r.reading_id
    )


def _end(state: VitalsState, r: Reading, rule: str) -> Clear:
    """`rule`'s episode ends with reading `r` (its values are back in range)."""
    state.active.discard(rule)
    return Clear(rule, r.t, r.reading_id)


# A rule, whether the reading is beyond its limit, and the limit.
Limit = tuple[str, bool, float]


def _ladder(
    state: VitalsState,
    out: list[Finding],
    r: Reading,
    value: float,
    critical: Limit,
    warning: Limit,
    **fields: Any,
) -> None:
    """A critical limit and, short of it, a warning one (KET-MON-RR and -RR-SOFT, KET-MON-SED
    and -SED-SOFT). Each rule's episode lasts while the reading is beyond its limit; the
    warning's does not start while the critical limit is crossed (its alert says more)."""
    rule, beyond, limit = critical
    if beyond and rule not in state.active:
        out.append(_start(state, r, rule, value, limit))
    elif not beyond and rule in state.active:
        out.append(_end(state, r, rule))
    hard = beyond
    rule, beyond, limit = warning
    if beyond and not hard and rule not in state.active:
        out.append(_start(state, r, rule, value, limit, **fields))
    elif not beyond and rule in state.active:
        out.append(_end(state, r, rule))


def _calm(state: VitalsState, critical: str, warning: str, within_both: bool) -> bool:
    """`_ladder` would find nothing: the reading is within both limits and neither rule's
    episode is in progress (the common case, decided without building its arguments)."""
    return within_both and critical not in state.active and warning not in state.active


# -- the state machines -----------------------------------------------------------------


def step(
    state: VitalsState,
    reading: Reading,
    group: Group,
    rules: MonitoringRules,
    *,
    prompts: bool = True,
) -> list[Finding]:
    """Evaluate `reading` for `group`; the reading must not be older than the state."""
    return STEPS[group](state, reading, rules, prompts)


def _latest(state: VitalsState, r: Reading, metric: str) -> Any:
    """The reading's value of `metric` (its step runs only when it has one), now the
    session's latest."""
    value = getattr(r, metric)
    state.last_t[metric], state.latest[metric] = r.t, value
    return value


def _step_bp(
    state: VitalsState, r: Reading, rules: MonitoringRules, prompts: bool
) -> list[Finding]:
    out: list[Finding] = []
    sys_, dia = r.bp_systolic, r.bp_diastolic
    if sys_ is not None:
        state.last_t["bp_systolic"], state.latest["bp_systolic"] = r.t, sys_
    if dia is not None:
        state.last_t["bp_diastolic"], state.latest["bp_diastolic"] = r.t, dia
    critical = rules.bp_critical_systolic_above, rules.bp_critical_diastolic_above
    above = _bp_above(sys_, dia, critical)
    if above is not None:
        previous = state.bp_above_t
        state.bp_above_t = r.t
        if KET_MON_BP not in state.active:
            window = rules.bp_critical_pair_within_seconds
            crisis = rules.bp_crisis_systolic_above, rules.bp_crisis_diastolic_above
            over, why = _bp_above(sys_, dia, crisis), f"above {_bp_limit(crisis)}"
            if over is None and previous is not None and r.t - previous <= window * US:
                over = above
                why = f"above {_bp_limit(critical)} on two readings within {_minutes(window)}"
            if over is not None:
                metric, value, threshold = over
                bp = _bp(sys_, dia)
                out.append(
                    _start(state, r, KET_MON_BP, value, threshold, metric=metric, bp=bp, why=why)
                )
    elif KET_MON_BP in state.active:
        out.append(_end(state, r, KET_MON_BP))
    recheck_at = rules.bp_recheck_systolic_above, rules.bp_recheck_diastolic_above
    recheck = _bp_above(sys_, dia, recheck_at) is not None
    if recheck and KET_MON_BP not in state.active:
        pending = state.bp_recheck_until
        if pending is None or r.t >= pending:
            due = r.t + rules.bp_recheck_after_seconds * US
            state.bp_recheck_until = due
            if prompts:
                out.append(Prompt(BP_RECHECK, r.t, due, r.reading_id))
    return out


def _recheck(
    state: VitalsState, r: Reading, kind: ObservationKind, attr: str, after: int, prompts: bool
) -> list[Finding]:
    """A section 2.4 soft-limit prompt, at most one pending at a time per kind."""
    pending: int | None = getattr(state, attr)
    if pending is not None and r.t < pending:
        return []
    due = r.t + after * US
    setattr(state, attr, due)
    return [Prompt(kind, r.t, due, r.reading_id)] if prompts else []


def _step_hr(
    state: VitalsState, r: Reading, rules: MonitoringRules, prompts: bool
) -> list[Finding]:
    hr = _latest(state, r, "heart_rate")
    out: list[Finding] = []
    low = rules.hr_critical_below
    if hr < low and KET_MON_HR_LOW not in state.active:
        out.append(_start(state, r, KET_MON_HR_LOW, hr, low))
    elif hr >= low and KET_MON_HR_LOW in state.active:
        out.append(_end(state, r, KET_MON_HR_LOW))
    limit = rules.hr_critical_above
    if hr > limit:
        if state.hr_run_t is None:
            state.hr_run_t = r.t
        sustained = rules.hr_sustained_seconds
        if KET_MON_HR not in state.active and r.t - state.hr_run_t >= sustained * US:
            out.append(_start(state, r, KET_MON_HR, hr, limit, duration=_minutes(sustained)))
    else:
        state.hr_run_t = None
        if KET_MON_HR in state.active:
            out.append(_end(state, r, KET_MON_HR))
    # Section 2.4: "HR > 110 -> recheck" while no HR alert is open.
    if hr > rules.hr_recheck_above and KET_MON_HR not in state.active:
        out.extend(
            _recheck(state, r, HR_RECHECK, "hr_recheck_until", rules.recheck_after_seconds, prompts)
        )
    return out


def _step_spo2(
    state: VitalsState, r: Reading, rules: MonitoringRules, prompts: bool
) -> list[Finding]:
    spo2 = _latest(state, r, "spo2")
    out: list[Finding] = []
    if spo2 < rules.spo2_sustained_below:
        if state.spo2_run_t is None:
            state.spo2_run_t = r.t
        sustained = rules.spo2_sustained_seconds
        if KET_MON_SPO2 in state.active:
            pass
        elif spo2 < rules.spo2_sentinel_below:
            out.append(_start(state, r, SPO2_SENTINEL, spo2, rules.spo2_sentinel_below))
        elif spo2 < rules.spo2_critical_below:
            out.append(_start(state, r, KET_MON_SPO2, spo2, rules.spo2_critical_below))
        elif r.t - state.spo2_run_t >= sustained * US:
            limit, duration = rules.spo2_sustained_below, _minutes(sustained)
            out.append(_start(state, r, SPO2_SUSTAINED, spo2, limit, duration=duration))
    else:
        state.spo2_run_t = None
        if KET_MON_SPO2 in state.active:
            out.append(_end(state, r, KET_MON_SPO2))
    # Section 2.4: "SpO2 < 94 % -> stimulate, recheck" (91 % for 30 s is a recheck).
    if spo2 < rules.spo2_recheck_below and KET_MON_SPO2 not in state.active:
        out.extend(
            _recheck(
                state, r, SPO2_RECHECK, "spo2_recheck_until", rules.recheck_after_seconds, prompts
            )
        )
    return out


def _step_rr(state: VitalsState, r: Reading, rules: MonitoringRules, _: bool) -> list[Finding]:
    rr = _latest(state, r, "respiratory_rate")
    low, high = rules.rr_soft_below, rules.rr_soft_above
    if _calm(
        state, KET_MON_RR, KET_MON_RR_SOFT, rr >= rules.rr_critical_below and low <= rr <= high
    ):
        return []
    out: list[Finding] = []
    hard = (KET_MON_RR, rr < rules.rr_critical_below, rules.rr_critical_below)
    soft = (KET_MON_RR_SOFT, rr < low or rr > high, low if rr < low else high)
    _ladder(state, out, r, rr, hard, soft, low=low, high=high)
    return out


def _step_sedation(
    state: VitalsState, r: Reading, rules: MonitoringRules, _: bool
) -> list[Finding]:
    score = _latest(state, r, "sedation_moaas")
    hard, soft = rules.moaas_critical_at_or_below, rules.moaas_soft_at_or_below
    if _calm(state, KET_MON_SED, KET_MON_SED_SOFT, score > hard and score > soft):
        return []
    out: list[Finding] = []
    _ladder(
        state,
        out,
        r,
        score,
        (KET_MON_SED, score <= hard, hard),
        (KET_MON_SED_SOFT, score <= soft, soft),
    )
    return out


STEPS: dict[Group, Callable[[VitalsState, Reading, MonitoringRules, bool], list[Finding]]] = {
    Group.BP: _step_bp,
    Group.HR: _step_hr,
    Group.SPO2: _step_spo2,
    Group.RR: _step_rr,
    Group.SED: _step_sedation,
}
Step = tuple[int, Group, Callable[[VitalsState, Reading, MonitoringRules, bool], list[Finding]]]
BP_BIT = 1
# For each `Reading.mask()`: (bit, group, step) of its groups in Group order. A batch loops
# over these with int bits instead of comparing with `Group.BP` and looking groups up in
# sets and dicts: on CPython 3.11 reading a member off its enum class costs several times a
# set lookup, and the batch did it for every reading and group (a sixth of the rules' time).
STEPS_BY_MASK: tuple[tuple[Step, ...], ...] = tuple(
    tuple((1 << i, g, STEPS[g]) for i, g in enumerate(Group) if mask & (1 << i))
    for mask in range(1 << len(Group))
)


# -- replay (late readings) ----------------------------------------------------------------


@dataclass(slots=True)
class Episode:
    """A period during which a rule's condition held: [trigger.t, end_t)."""

    trigger: Trigger
    end_t: int | None = None
    end_reading_id: str | None = None

    @property
    def rule_id(self) -> str:
        return self.trigger.rule_id

    @property
    def start_t(self) -> int:
        return self.trigger.t


def sort_key(reading: Reading) -> tuple[int, str]:
    return (reading.t, reading.reading_id)


def replay(
    readings: Iterable[Reading], group: Group, rules: MonitoringRules
) -> tuple[VitalsState, list[Episode]]:
    """Re-derive `group`'s state and episodes from readings in any order."""
    state = VitalsState()
    episodes: list[Episode] = []
    current: dict[str, Episode] = {}
    for reading in sorted((r for r in readings if group in r.groups()), key=sort_key):
        for finding in step(state, reading, group, rules, prompts=False):
            if isinstance(finding, Trigger):
                episode = Episode(finding)
                episodes.append(episode)
                current[finding.rule_id] = episode
            elif isinstance(finding, Clear) and finding.rule_id in current:
                ended = current.pop(finding.rule_id)
                ended.end_t, ended.end_reading_id = finding.t, finding.reading_id
    return state, episodes


def crisis_symptoms(reading: Reading, rules: MonitoringRules) -> tuple[str, ...]:
    """SPR-MON-6: the reading's hypertensive-crisis symptoms (known codes only)."""
    if not reading.symptoms:
        return ()
    wanted = rules.crisis_symptoms
    return tuple(s for s in wanted if s in reading.symptoms)


def predose_bp_elevated(reading: Reading, rules: MonitoringRules) -> bool:
    """SPR-PRE-5: BP strictly above 140/90 (the comparison intake's screening uses too)."""
    return spr_pre_5_elevated(
        reading.bp_systolic,
        reading.bp_diastolic,
        systolic_above=rules.predose_bp_systolic_above,
        diastolic_above=rules.predose_bp_diastolic_above,
    )
