"""Vitals ingest: one use case for both ways readings arrive.

`VitalsIngest.apply` takes any number of readings (one from `POST .../vitals`, a
few thousand from a topic batch) and, inside the caller's unit of work:

1. locks and loads each session once;
2. rejects readings for unknown sessions, closed windows or the wrong patient,
   reporting each (HTTP: 404/409; topic: dead letter), without touching the rest;
3. stores the readings (bulk) and drops repeats in the same statement: a
   `reading_id` already stored (or seen earlier in the batch) has no second effect
   (the readings table is the inbox of readings);
4. evaluates each session's new readings in memory by `recorded_at` (late readings
   re-derive the affected metric group) and writes alerts, resolutions, prompts
   (outbox) and the sessions' rule state. The caller commits: all of it or nothing.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from operator import attrgetter
from typing import Protocol

from sqlalchemy import update

from kap_shared.events.enums import Phase, Severity
from kap_shared.events.envelope import utc_now
from kap_shared.messaging import timers
from kap_shared.messaging.unit_of_work import UnitOfWork
from kap_shared.rules import SiteRules

from ..adapters import store
from ..adapters.store import SessionRow, StateChange
from ..adapters.tables import CHECKED_IN, OPEN, RESOLVED, SCHEDULED, Alert
from ..domain.rules import (
    MON_READING_1,
    MON_READING_2,
    MON_WINDOW_1,
    SPR_MON_6,
    SPR_PRE_5,
    MonitoringRules,
)
from ..domain.vitals import (
    BP_BIT,
    GROUP_RULES,
    STEPS_BY_MASK,
    Clear,
    Finding,
    Group,
    Prompt,
    Reading,
    Trigger,
    VitalsState,
    crisis_symptoms,
    from_micros,
    micros,
    predose_bp_elevated,
    replay,
)
from .alerts import BY_RULES, VALUES_IN_RANGE, observation_due, raise_alert, resolve_alert
from .observations import BP_CHECK_KEYS

NOT_FOUND = "not_found"
DOSING = Phase.DOSING.value


@dataclass(slots=True)
class Incoming:
    """A reading to ingest, with where it came from (treated as immutable; not frozen
    because thousands are built per batch and frozen dataclasses construct slower)."""

    reading: Reading
    recorded_at: datetime
    session_id: str
    source: str  # "http" or "device"
    event_id: str | None  # the VitalsRecorded event: causation of what it triggers
    patient_id: str | None = None  # the envelope's, checked against the session's
    site_id: str | None = None
    traceparent: str | None = None
    ref: int = 0  # the caller's handle (a batch position)


@dataclass(frozen=True, slots=True)
class Rejection:
    item: Incoming
    code: str  # "not_found" or a rule id
    message: str

    @property
    def status(self) -> int:
        return 404 if self.code == NOT_FOUND else 409


@dataclass
class IngestResult:
    stored: list[Incoming] = field(default_factory=list)
    duplicates: list[Incoming] = field(default_factory=list)
    rejected: list[Rejection] = field(default_factory=list)
    raised: list[Alert] = field(default_factory=list)
    resolved: list[Alert] = field(default_factory=list)
    prompts: list[tuple[str, datetime]] = field(default_factory=list)


class WindowLike(Protocol):
    @property
    def session_id(self) -> str: ...
    @property
    def phase(self) -> str: ...
    @property
    def status(self) -> str: ...


def window_problem(row: WindowLike) -> str | None:
    """Why readings, doses or a discharge are not accepted for this session now."""
    if row.phase != DOSING:
        return f"session {row.session_id} is a {row.phase} session, not a dosing session"
    if row.status == CHECKED_IN:
        return None
    if row.status == SCHEDULED:
        return f"session {row.session_id} is not checked in: its monitoring window is not open"
    return f"session {row.session_id} is {row.status}: its monitoring window is closed"


class VitalsIngest:
    def __init__(
        self, rules: SiteRules[MonitoringRules], clock: Callable[[], datetime] = utc_now
    ) -> None:
        self.rules = rules
        self.clock = clock

    async def apply(
        self,
        uow: UnitOfWork,
        incoming: Sequence[Incoming],
        *,
        admit: Callable[[Mapping[str, SessionRow]], None] | None = None,
    ) -> IngestResult:
        """`admit` sees the sessions as locked and loaded, before anything is checked or
        written, and may raise to refuse the whole call (an HTTP POST's 404/403/409 on
        the one row it reads). Nothing is worth committing when `result.stored` is empty
        (the sessions' lock aside)."""
        result = IngestResult()
        fresh: list[Incoming] = []
        first_seen: dict[str, Incoming] = {}
        for item in incoming:
            rid = item.reading.reading_id
            earlier = first_seen.get(rid)
            if earlier is None:
                first_seen[rid] = item
                fresh.append(item)
            elif earlier.session_id == item.session_id:
                result.duplicates.append(item)
            else:
                result.rejected.append(_reused(item, earlier.session_id))
        if not fresh:
            return result
        db = uow.session
        session_ids = {item.session_id for item in fresh}
        sessions = await store.lock_and_load_sessions(db, session_ids)
        if admit is not None:
            admit(sessions)
        by_session, refused = _admissible(fresh, sessions)
        if refused:
            # A reading already stored is a repeat whatever its session is now (a device
            # retrying after the window closed): settled as one, not refused.
            owners = await store.existing_readings(db, [r.item.reading.reading_id for r in refused])
            for rejection in refused:
                owner = owners.get(rejection.item.reading.reading_id)
                if owner is None:
                    result.rejected.append(rejection)
                else:
                    _repeat(rejection.item, owner, result)
        if not by_session:
            return result
        now = self.clock()
        # Stored before the rules: the primary key settles repeats (MON-READING-1 when
        # the id is another session's) in the insert itself, one statement for a batch
        # of new readings; the rules then see only what is new.
        stored = await store.insert_readings(
            db, [item for items in by_session.values() for item in items], now
        )
        if stored:
            by_session = _without_repeats(by_session, stored, result)
            if not by_session:
                return result
        open_by_session: dict[str, dict[str, Alert]] = defaultdict(dict)
        for alert in await store.open_alerts(db, by_session):
            open_by_session[alert.session_id][alert.rule_id] = alert
        changes = []
        settled_timers: list[str] = []
        for session_id, items in by_session.items():
            row = sessions[session_id]
            work = _SessionWork(
                uow, row, self.rules.for_site(row.site_id), open_by_session[session_id], now, result
            )
            await work.apply(items)
            changes.append(work.change(len(items)))
            settled_timers.extend(work.settled_timers)
            result.stored.extend(items)
        # A reminder firing now holds its timer row and waits for a session's lock (a
        # deadlock if the batch waited for the row): it is left to fire, and finds the
        # check done once this batch commits.
        await timers.cancel_many(db, settled_timers, unless_firing=True)
        await store.save_session_states(db, changes)
        return result


def _admissible(
    items: list[Incoming], sessions: Mapping[str, SessionRow]
) -> tuple[dict[str, list[Incoming]], list[Rejection]]:
    """The items whose session takes readings now, by session, and the refusals of the
    others: an unknown session (404), a closed window (MON-WINDOW-1), another patient's
    or site's envelope (MON-READING-2)."""
    candidates: dict[str, list[Incoming]] = defaultdict(list)
    for item in items:
        candidates[item.session_id].append(item)
    by_session: dict[str, list[Incoming]] = {}
    refused: list[Rejection] = []
    for session_id, items_of_session in candidates.items():
        row = sessions.get(session_id)
        if row is None:
            message = f"session {session_id} is not known to monitoring"
            refused.extend(Rejection(i, NOT_FOUND, message) for i in items_of_session)
            continue
        problem = window_problem(row)
        if problem is not None:
            refused.extend(Rejection(i, MON_WINDOW_1, problem) for i in items_of_session)
            continue
        keep = []
        for item in items_of_session:
            if (item.patient_id is not None and item.patient_id != row.patient_id) or (
                item.site_id is not None and item.site_id != row.site_id
            ):
                refused.append(
                    Rejection(
                        item,
                        MON_READING_2,
                        f"session {session_id} belongs to another patient or site "
                        "than the reading's envelope",
                    )
                )
            else:
                keep.append(item)
        if keep:
            by_session[session_id] = keep
    return by_session, refused


def _without_repeats(
    by_session: dict[str, list[Incoming]], stored: Mapping[str, str], result: IngestResult
) -> dict[str, list[Incoming]]:
    """`by_session` less the readings stored before this batch (`stored`: reading_id ->
    its session), which go to `result` as repeats."""
    kept: dict[str, list[Incoming]] = {}
    for session_id, items in by_session.items():
        new = []
        for item in items:
            owner = stored.get(item.reading.reading_id)
            if owner is None:
                new.append(item)
            else:
                _repeat(item, owner, result)
        if new:
            kept[session_id] = new
    return kept


def _repeat(item: Incoming, owner: str, result: IngestResult) -> None:
    """A reading whose id is stored already: a duplicate when it is its session's,
    MON-READING-1 when it is another session's."""
    if owner == item.session_id:
        result.duplicates.append(item)
    else:
        result.rejected.append(_reused(item, owner))


def _reused(item: Incoming, owner: str) -> Rejection:
    return Rejection(
        item,
        MON_READING_1,
        f"reading_id {item.reading.reading_id} already belongs to session {owner}",
    )


INFINITY = math.inf


class _SessionWork:
    """Evaluating one session's new readings (in memory, state loaded once)."""

    def __init__(
        self,
        uow: UnitOfWork,
        row: SessionRow,
        rules: MonitoringRules,
        open_alerts: dict[str, Alert],
        now: datetime,
        result: IngestResult,
    ) -> None:
        self.uow = uow
        self.row = row
        self.rules = rules
        self.open = open_alerts
        self.now = now
        self.result = result
        self.state = VitalsState.from_json(row.rule_state)
        self.pending = row.predose_decision_pending
        self.decision = row.predose_decision
        self.bp_check_done = row.bp_check_done
        self._by_id: dict[str, Incoming] | None = None
        self._items: list[Incoming] = []
        # Timers these readings made moot (SPR-MON-1), cancelled for the batch at once.
        self.settled_timers: list[str] = []

    def change(self, new_readings: int) -> StateChange:
        return StateChange(
            self.row.session_id,
            self.state.to_json(),
            self.pending,
            self.decision,
            self.bp_check_done,
            new_readings,
            self.now,
        )

    async def apply(self, items: list[Incoming]) -> None:
        """One pass over the session's new readings in time order. A metric group whose
        first new reading is older than the newest already evaluated is late: it is
        set aside and re-derived by `_replay`; the others run their machines."""
        items.sort(key=ITEM_ORDER)
        self._items = items
        state, rules = self.state, self.rules
        checked = late = 0  # Group bits (see STEPS_BY_MASK)
        bp: list[Reading] = []
        for item in items:
            reading = item.reading
            mask = reading.mask()
            if mask & BP_BIT:
                bp.append(reading)
            for bit, group, step in STEPS_BY_MASK[mask]:
                if not checked & bit:
                    checked |= bit
                    if state.is_late(reading, group):
                        late |= bit
                if late & bit:
                    continue
                for finding in step(state, reading, rules, True):
                    await self._apply(finding)
            if reading.symptoms:
                self._crisis(item)
            if reading.dissociation is not None:
                state.assess_dissociation(reading)
        if late:
            groups = sorted(group for _, group, _ in STEPS_BY_MASK[late])
            await self._replay(groups)
        if bp:
            self._predose(bp)
            self._bp_check(bp)

    # -- findings ------------------------------------------------------------------

    def _item(self, reading_id: str) -> Incoming | None:
        """The new reading a finding names (findings are rare: looked up by id on demand)."""
        if self._by_id is None:
            self._by_id = {i.reading.reading_id: i for i in self._items}
        return self._by_id.get(reading_id)

    async def _apply(self, finding: Finding) -> None:
        if isinstance(finding, Trigger):
            if finding.rule_id not in self.open:
                self._raise(finding)
        elif isinstance(finding, Clear):
            await self._end_episode(finding.rule_id, finding.t, finding.reading_id)
        elif isinstance(finding, Prompt):
            item = self._item(finding.reading_id)
            due = from_micros(finding.due_t)
            observation_due(
                self.uow,
                self.row,
                kind=finding.kind,
                rule_id=finding.rule_id,
                due_at=due,
                now=self.now,
                causation_id=item.event_id if item else None,
                traceparent=item.traceparent if item else None,
            )
            self.result.prompts.append((finding.kind, due))

    def _raise(self, trigger: Trigger, *, track: bool = True) -> Alert:
        item = self._item(trigger.reading_id)
        alert = raise_alert(
            self.uow,
            self.row,
            rule_id=trigger.rule_id,
            severity=trigger.severity,
            metric=trigger.metric,
            value=trigger.value,
            threshold=trigger.threshold,
            message=trigger.message,
            triggered_at=from_micros(trigger.t),
            reading_id=trigger.reading_id,
            causation_id=item.event_id if item else None,
            now=self.now,
            traceparent=item.traceparent if item else None,
        )
        if track:  # a past episode's alert (resolved at once) is not the open one
            self.open[trigger.rule_id] = alert
        self.result.raised.append(alert)
        return alert

    def _resolve(self, alert: Alert, reading_id: str | None) -> None:
        item = self._item(reading_id) if reading_id else None
        resolve_alert(
            self.uow,
            self.row,
            alert,
            now=self.now,
            by=BY_RULES,
            resolution=VALUES_IN_RANGE,
            causation_id=item.event_id if item else None,
            traceparent=item.traceparent if item else None,
        )
        if self.open.get(alert.rule_id) is alert:
            del self.open[alert.rule_id]
        self.result.resolved.append(alert)

    async def _end_episode(self, rule_id: str, t: int, reading_id: str) -> None:
        """Values back in range: the episode ends; its open alert is resolved. An alert a
        prescriber already resolved during the episode gets its end time too."""
        ended = from_micros(t)
        alert = self.open.get(rule_id)
        if alert is not None:
            alert.episode_end_at = ended
            self._resolve(alert, reading_id)
        table = Alert.__table__  # type: ignore[attr-defined]
        await self.uow.session.exec(
            update(table)
            .where(table.c.session_id == self.row.session_id)
            .where(table.c.rule_id == rule_id)
            .where(table.c.status == RESOLVED)
            .where(table.c.episode_end_at.is_(None))
            .values(episode_end_at=ended)
        )

    # -- late readings -------------------------------------------------------------

    async def _replay(self, groups: list[Group]) -> None:
        """Re-derive each late group from all of the session's readings, then reconcile
        the episodes found with the alerts already raised: a new episode raises an alert
        (already resolved if it has ended), an ended one resolves its open alert; an
        episode that matches an existing alert (they overlap in time) raises nothing."""
        # The batch's readings are stored already (VitalsIngest.apply inserts first).
        everything = await store.session_readings(self.uow.session, self.row.session_id)
        for group in groups:
            final, episodes = replay(everything, group, self.rules)
            alerts = await store.session_alerts(
                self.uow.session, self.row.session_id, GROUP_RULES[group]
            )
            matched: set[str] = set()
            for episode in episodes:
                end = episode.end_t if episode.end_t is not None else INFINITY
                alert = next(
                    (
                        a
                        for a in alerts
                        if a.rule_id == episode.rule_id
                        and micros(a.triggered_at) <= end
                        and episode.start_t
                        <= (micros(a.episode_end_at) if a.episode_end_at else INFINITY)
                    ),
                    None,
                )
                if alert is None:
                    alert = self._raise(episode.trigger, track=episode.end_t is None)
                    alerts.append(alert)
                matched.add(alert.alert_id)
                if episode.end_t is not None and alert.episode_end_at is None:
                    alert.episode_end_at = from_micros(episode.end_t)
                    self.uow.session.add(alert)
                    if alert.status == OPEN:
                        self._resolve(alert, episode.end_reading_id)
            for alert in alerts:
                if (
                    alert.status == OPEN
                    and alert.alert_id not in matched
                    and alert.rule_id not in final.active
                ):
                    self._resolve(alert, None)
            self.state.adopt(final, group)

    # -- rules outside the metric machines ---------------------------------------------

    def _crisis(self, item: Incoming) -> None:
        """SPR-MON-6: hypertensive-crisis symptoms with any reading: emergency pathway.
        The alert stays open until a prescriber resolves it (a symptom list that is
        empty later does not prove the crisis is over)."""
        found = crisis_symptoms(item.reading, self.rules)
        if not found or SPR_MON_6 in self.open:
            return
        r = item.reading
        bp = (
            f" with blood pressure {r.bp_systolic}/{r.bp_diastolic} mmHg"
            if r.bp_systolic is not None
            else ""
        )
        self._raise(
            Trigger(
                SPR_MON_6,
                Severity.CRITICAL,
                "symptoms",
                float(len(found)),
                0.0,
                f"Symptoms of hypertensive crisis ({', '.join(found)}){bp} (SPR-MON-6). "
                "Emergency pathway: stop dosing, call the prescriber, arrange emergency care.",
                r.t,
                r.reading_id,
            )
        )

    def _predose(self, bp: list[Reading]) -> None:
        """SPR-PRE-5: a BP above 140/90 before the first dose needs a prescriber's
        documented proceed/defer; until then doses are refused (409 SPR-PRE-5)."""
        first = self.row.first_dose_at
        first_t = micros(first) if first is not None else None
        for r in bp:
            if first_t is not None and r.t >= first_t:
                continue
            if not predose_bp_elevated(r, self.rules):
                continue
            if first_t is None:
                self.pending, self.decision = True, None
            if SPR_PRE_5 in self.open:
                continue
            limits = self.rules.predose_bp_systolic_above, self.rules.predose_bp_diastolic_above
            if r.bp_systolic is not None and r.bp_systolic > limits[0]:
                metric, value, threshold = "bp_systolic", r.bp_systolic, limits[0]
            else:
                metric, value, threshold = "bp_diastolic", r.bp_diastolic or 0, limits[1]
            self._raise(
                Trigger(
                    SPR_PRE_5,
                    Severity.WARNING,
                    metric,
                    float(value),
                    float(threshold),
                    f"Pre-dose blood pressure {r.bp_systolic}/{r.bp_diastolic} mmHg is above "
                    f"{limits[0]}/{limits[1]} (SPR-PRE-5). A prescriber must document "
                    "proceed or defer before dosing.",
                    r.t,
                    r.reading_id,
                )
            )

    def _bp_check(self, bp: list[Reading]) -> None:
        """SPR-MON-1: a BP reading within the window around 40 minutes after the first
        dose satisfies the check; its reminder and overdue timers are to be cancelled."""
        first = self.row.first_dose_at
        if self.bp_check_done or first is None:
            return
        start, end = bp_check_window(first, self.rules)
        low, high = micros(start), micros(end)
        if any(low <= r.t <= high for r in bp):
            self.bp_check_done = True
            self.settled_timers.extend(key(self.row.session_id) for key in BP_CHECK_KEYS)


# Readings are evaluated by recorded_at, ties by reading_id (a C getter: one per reading).
ITEM_ORDER = attrgetter("reading.t", "reading.reading_id")


def bp_check_window(first_dose_at: datetime, rules: MonitoringRules) -> tuple[datetime, datetime]:
    due = first_dose_at + timedelta(minutes=rules.bp_check_due_minutes)
    tolerance = timedelta(minutes=rules.bp_check_tolerance_minutes)
    return due - tolerance, due + tolerance
