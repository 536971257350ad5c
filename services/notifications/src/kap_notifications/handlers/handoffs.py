"""Handoffs across phases (issue 11): the prescriber and the therapist each learn
what the other just did. Rows: `routing.HANDOFF_TABLE`; decisions and texts:
`domain/handoffs.py`.

Everything runs in the consumer's or the timer worker's unit of work, through
`Notifier.send`, so exactly-once, channel preferences and quiet hours are those of
every other row. Routine handoffs go to the inbox at once and are collected into the
recipient's digest (in-app and email, at the site's digest time); urgent ones go at
once on every channel of their row.

Durable timers (kap_shared.messaging.timers):

* `integration-window:<dosing session>`: a discharge (DischargeCleared) arrived
  before the completion that carries the KAP-2 deadline; if the completion is still
  missing after the grace period, the therapist is told without the deadline;
* `integration-warning:<dosing session>`: KAP-2 "warn at 48 h"; booking the
  patient's integration session (SessionScheduled, phase integration) cancels it;
* `digest:<site>:<slot>`: the site's next digest.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from uuid import NAMESPACE_URL, uuid5

from sqlmodel import col
from sqlmodel.ext.asyncio.session import AsyncSession

from kap_shared.events import (
    DischargeCleared,
    Envelope,
    InductionReviewDue,
    OutcomeRecorded,
    PhaseAdvanced,
    SessionCompleted,
    SessionScheduled,
    TreatmentPlanCreated,
)
from kap_shared.events.enums import Channel, Instrument, Phase
from kap_shared.events.envelope import as_utc
from kap_shared.logging import get_logger
from kap_shared.messaging import timers
from kap_shared.messaging.consumer import EventHandler
from kap_shared.messaging.unit_of_work import UnitOfWork

from ..adapters.tables import (
    OPEN,
    SETTLED,
    CareTeam,
    DigestItem,
    IntegrationWindow,
    MeasureSchedule,
    PatientProgress,
    SessionTeam,
    select,
)
from ..domain import handoffs as text
from ..domain.handoffs import OutcomeMemory, next_digest_at, outcome_rule
from ..domain.routing import RULES, Message, Priority
from . import measures
from .notify import Notifier, Source

WINDOW_TIMER = "integration-window"
WARNING_TIMER = "integration-warning"
DIGEST_TIMER = "digest"
log = get_logger(__name__)


def _source(event: Envelope) -> Source:
    return Source(
        str(event.event_id), event.event_type, event.site_id, event.patient_id, event.correlation_id
    )


def _ids(ids: Iterable[str | None]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(i for i in ids if i))


@dataclass
class Handoffs:
    notifier: Notifier

    def handlers(self) -> dict[type, EventHandler]:
        return {
            TreatmentPlanCreated: self.on_plan_created,
            SessionScheduled: self.on_session_scheduled,
            SessionCompleted: self.on_session_completed,
            DischargeCleared: self.on_discharge_cleared,
            PhaseAdvanced: self.on_phase_advanced,
            OutcomeRecorded: self.on_outcome_recorded,
            InductionReviewDue: self.on_induction_review_due,
        }

    def timer_handlers(self) -> dict[str, timers.TimerHandler]:
        return {
            WINDOW_TIMER: self.window_grace_ended,
            WARNING_TIMER: self.integration_warning,
            DIGEST_TIMER: self.digest,
            measures.MEASURE_TIMER: self.measure_due,
        }

    # -- telling -------------------------------------------------------------------------------

    async def tell(
        self,
        uow: UnitOfWork,
        source: Source,
        rule_key: str,
        recipients: Iterable[str | None],
        title_body: tuple[str, str],
    ) -> None:
        rule = RULES[rule_key]
        message = Message(rule, _ids(recipients), *title_body)
        if not message.recipients:
            log.warning("handoff.no_recipient", rule=rule_key)
            return
        now = self.notifier.clock()
        rows = await self.notifier.send(uow, source, message, now)
        if rule.priority is not Priority.ROUTINE:
            return
        for row in rows:
            if row.channel == Channel.IN_APP:
                uow.session.add(
                    DigestItem(
                        notification_id=row.notification_id,
                        recipient_id=row.recipient_id,
                        site_id=row.site_id,
                        patient_id=row.patient_id,
                        rule=rule_key,
                        created_at=now,
                    )
                )
        if rows:
            await self._schedule_digest(uow.session, source.site_id, now)

    async def _team(self, session: AsyncSession, patient_id: str) -> CareTeam | None:
        return await session.get(CareTeam, patient_id)

    # -- KAP-2: the integration window -----------------------------------------------------------

    async def on_session_completed(self, event: Envelope, uow: UnitOfWork) -> None:
        assert isinstance(event, SessionCompleted)
        d = event.data
        if d.phase is Phase.DOSING:
            # A treatment session resets the measurement clocks (rulebook 3.2, MoodMonitor).
            await measures.reset(
                uow.session,
                event,
                await measures.used_instruments(uow.session, event.patient_id),
                self.notifier.rules.for_site(event.site_id),
                self.notifier.clock(),
            )
            await self._open_window(uow, event, d.session_id, d.integration_due_by)
        elif d.phase is Phase.INTEGRATION:
            team = await self._team(uow.session, event.patient_id)
            holds = d.open_dosing_holds
            rule = "integration-completed-hold" if holds else "integration-completed"
            await self.tell(
                uow,
                _source(event),
                rule,
                [team.prescriber_id if team else None],
                text.integration_done_text(
                    event.patient_id,
                    d.session_id,
                    d.dosing_sessions_completed,
                    d.planned_dosing_sessions,
                    holds,
                ),
            )

    async def on_discharge_cleared(self, event: Envelope, uow: UnitOfWork) -> None:
        assert isinstance(event, DischargeCleared)
        await self._open_window(uow, event, event.data.session_id, None)

    async def _open_window(
        self, uow: UnitOfWork, event: Envelope, session_id: str, due_by: datetime | None
    ) -> None:
        session, now = uow.session, self.notifier.clock()
        rules = self.notifier.rules.for_site(event.site_id)
        window = await session.get(IntegrationWindow, session_id)
        if window is None:
            dosing = await session.get(SessionTeam, session_id)
            team = await self._team(session, event.patient_id)
            window = IntegrationWindow(
                dosing_session_id=session_id,
                patient_id=event.patient_id,
                site_id=event.site_id,
                correlation_id=event.correlation_id,
                therapist_id=(team.therapist_id if team else None)
                or (dosing.therapist_id if dosing else None),
                opened_at=now,
                status=OPEN,
            )
            await _window_timer(
                session, WARNING_TIMER, session_id, now, rules.integration_warning_after_seconds
            )
        if due_by is not None:
            window.due_by = due_by
        session.add(window)
        if window.notified_at is not None or window.status != OPEN:
            return
        if due_by is None:
            # A discharge: wait a little for the completion and its deadline.
            await _window_timer(
                session, WINDOW_TIMER, session_id, now, rules.integration_window_grace_seconds
            )
            return
        await timers.cancel(session, f"{WINDOW_TIMER}:{session_id}")
        await self._tell_window(uow, window, _source(event), now)

    async def _tell_window(
        self, uow: UnitOfWork, window: IntegrationWindow, source: Source, now: datetime
    ) -> None:
        window.notified_at = now
        uow.session.add(window)
        due = as_utc(window.due_by) if window.due_by else None
        await self.tell(
            uow,
            source,
            "integration-window",
            [window.therapist_id],
            text.window_text(window.patient_id, window.dosing_session_id, due, now),
        )

    def _timer_source(self, window: IntegrationWindow, job: timers.ScheduledJob) -> Source:
        return Source(
            job.job_id,
            f"timer:{job.kind}",
            window.site_id,
            window.patient_id,
            window.correlation_id,
        )

    async def window_grace_ended(self, job: timers.ScheduledJob, uow: UnitOfWork) -> None:
        window = await uow.session.get(IntegrationWindow, str(job.payload["dosing_session_id"]))
        if window is None or window.notified_at is not None or window.status != OPEN:
            return
        await self._tell_window(uow, window, self._timer_source(window, job), self.notifier.clock())

    async def integration_warning(self, job: timers.ScheduledJob, uow: UnitOfWork) -> None:
        window = await uow.session.get(IntegrationWindow, str(job.payload["dosing_session_id"]))
        if window is None or window.status != OPEN:
            return
        now = self.notifier.clock()
        due = as_utc(window.due_by) if window.due_by else None
        if due is not None and due <= now:
            return  # past the deadline: IntegrationOverdue (scheduling) says so
        await self.tell(
            uow,
            self._timer_source(window, job),
            "integration-warning",
            [window.therapist_id],
            text.warning_text(window.patient_id, window.dosing_session_id, due, now),
        )

    async def on_session_scheduled(self, event: Envelope, uow: UnitOfWork) -> None:
        """Routed as before (session team); an integration booking settles KAP-2 here."""
        await self.notifier.on_event(event, uow)
        assert isinstance(event, SessionScheduled)
        if event.data.phase is Phase.INTEGRATION:
            await self.settle_windows(uow.session, event.patient_id)

    async def settle_windows(self, session: AsyncSession, patient_id: str) -> None:
        """An integration session got booked: the patient's open windows are settled
        and their warnings cancelled (part of the consumer's unit of work)."""
        rows = await session.exec(
            select(IntegrationWindow)
            .where(IntegrationWindow.patient_id == patient_id)
            .where(IntegrationWindow.status == OPEN)
        )
        for window in rows:
            window.status = SETTLED
            session.add(window)
            await timers.cancel(session, f"{WARNING_TIMER}:{window.dosing_session_id}")
            await timers.cancel(session, f"{WINDOW_TIMER}:{window.dosing_session_id}")
            log.info("handoff.window_settled", dosing_session_id=window.dosing_session_id)

    # -- phases ----------------------------------------------------------------------------------

    async def on_phase_advanced(self, event: Envelope, uow: UnitOfWork) -> None:
        assert isinstance(event, PhaseAdvanced)
        d = event.data
        if d.from_phase is None:
            return  # the plan's start: TreatmentPlanCreated already told both
        team = await self._team(uow.session, event.patient_id)
        await self.tell(
            uow,
            _source(event),
            "phase-advanced",
            [team.prescriber_id, team.therapist_id] if team else [],
            text.phase_text(event.patient_id, d.plan_id, d.from_phase, d.to_phase),
        )

    # -- outcomes and the end of induction -------------------------------------------------------

    async def _progress(self, session: AsyncSession, patient_id: str) -> PatientProgress:
        progress = await session.get(PatientProgress, patient_id)
        return progress or PatientProgress(patient_id=patient_id, last_totals={})

    async def on_outcome_recorded(self, event: Envelope, uow: UnitOfWork) -> None:
        assert isinstance(event, OutcomeRecorded)
        d = event.data
        progress = await self._progress(uow.session, event.patient_id)
        previous = progress.last_totals.get(d.instrument.value)
        seen = OutcomeMemory(
            previous_total=previous,
            response_told=progress.response_told,
            remission_told=progress.remission_told,
            induction_review_due=progress.induction_review_at is not None,
            no_response_told=progress.no_response_told,
        )
        rules = self.notifier.rules.for_site(event.site_id)
        rule_key = outcome_rule(d, seen, rules)
        await measures.reset(uow.session, event, [d.instrument], rules, self.notifier.clock())
        progress.last_totals = {**progress.last_totals, d.instrument.value: d.total}
        if d.instrument is Instrument.PHQ9:
            progress.latest_phq9 = {
                "total": d.total,
                "baseline_total": d.baseline_total,
                "change_pct": d.change_pct,
                "response": d.response,
                "remission": d.remission,
            }
        progress.response_told = progress.response_told or rule_key == "outcome-response"
        progress.remission_told = progress.remission_told or rule_key == "outcome-remission"
        progress.no_response_told = progress.no_response_told or rule_key == "induction-no-response"
        progress.updated_at = self.notifier.clock()
        uow.session.add(progress)
        if rule_key is None:
            return
        team = await self._team(uow.session, event.patient_id)
        audience = RULES[rule_key].audience.name
        recipients = {
            "PATIENT_TEAM": [team.prescriber_id, team.therapist_id] if team else [],
            "PLAN_THERAPIST": [team.therapist_id] if team else [],
            "PLAN_PRESCRIBER": [team.prescriber_id] if team else [],
        }[audience]
        await self.tell(
            uow,
            _source(event),
            rule_key,
            recipients,
            text.outcome_text(rule_key, event.patient_id, d, previous),
        )

    async def on_induction_review_due(self, event: Envelope, uow: UnitOfWork) -> None:
        assert isinstance(event, InductionReviewDue)
        d = event.data
        progress = await self._progress(uow.session, event.patient_id)
        latest = progress.latest_phq9
        progress.induction_review_at = self.notifier.clock()
        if latest and not (latest.get("response") or latest.get("remission")):
            progress.no_response_told = True  # this task already says "no response"
        uow.session.add(progress)
        await self.tell(
            uow,
            _source(event),
            "induction-review",
            [d.prescriber_id],
            text.induction_text(event.patient_id, d.plan_id, d.dosing_sessions_completed, latest),
        )

    # -- the measurement schedule (rulebook 3.2) ---------------------------------------------------

    async def on_plan_created(self, event: Envelope, uow: UnitOfWork) -> None:
        """Routed as before (plan team); the plan's PHQ-9 schedule starts here."""
        await self.notifier.on_event(event, uow)
        rules = self.notifier.rules.for_site(event.site_id)
        now = self.notifier.clock()
        if not await uow.session.get(MeasureSchedule, (event.patient_id, Instrument.PHQ9.value)):
            await measures.reset(uow.session, event, [Instrument.PHQ9], rules, now)

    async def measure_due(self, job: timers.ScheduledJob, uow: UnitOfWork) -> None:
        found = await measures.due(job, uow, self.notifier.clock())
        if found is None:
            return
        interval = self.notifier.rules.for_site(found.row.site_id).measure_interval_days.get(
            Instrument(found.row.instrument)
        )
        await self.tell(
            uow,
            found.source,
            "measure-due",
            [found.recipient_id],
            measures.due_text(found.row, interval),
        )

    # -- the digest ------------------------------------------------------------------------------

    async def _schedule_digest(self, session: AsyncSession, site_id: str, now: datetime) -> None:
        slot = next_digest_at(now, self.notifier.rules.for_site(site_id))
        key = f"{DIGEST_TIMER}:{site_id}:{slot.isoformat()}"
        existing = await session.exec(
            select(timers.ScheduledJob).where(timers.ScheduledJob.key == key)
        )
        if existing.first() is None:  # never re-arm a digest that already went out
            await timers.schedule(
                session,
                kind=DIGEST_TIMER,
                key=key,
                due_at=slot,
                payload={"site_id": site_id, "slot": slot.isoformat()},
            )

    async def digest(self, job: timers.ScheduledJob, uow: UnitOfWork) -> None:
        """Timer: one digest per clinician with routine handoffs waiting at the site."""
        site_id, now = str(job.payload["site_id"]), self.notifier.clock()
        items = list(
            await uow.session.exec(
                select(DigestItem)
                .where(DigestItem.site_id == site_id)
                .where(col(DigestItem.digested_at).is_(None))
                .order_by(col(DigestItem.created_at))
            )
        )
        by_recipient: dict[str, list[DigestItem]] = {}
        for item in items:
            by_recipient.setdefault(item.recipient_id, []).append(item)
            item.digested_at = now
            uow.session.add(item)
        digest_id = str(uuid5(NAMESPACE_URL, f"kap:{job.key}"))
        for recipient_id, waiting in sorted(by_recipient.items()):
            message = Message(
                RULES["digest"],
                (recipient_id,),
                *text.digest_text([(i.rule, i.patient_id, i.notification_id) for i in waiting]),
            )
            # The digest is about several patients: its patient id is the placeholder "*".
            source = Source(digest_id, "Digest", site_id, "*", job.key)
            await self.notifier.send(uow, source, message, now)
        log.info("digest.sent", site_id=site_id, recipients=len(by_recipient), items=len(items))


async def _window_timer(
    session: AsyncSession, kind: str, dosing_session_id: str, now: datetime, after_seconds: float
) -> None:
    """A timer about a dosing session's integration window, keyed `<kind>:<session id>`."""
    await timers.schedule(
        session,
        kind=kind,
        key=f"{kind}:{dosing_session_id}",
        due_at=now + timedelta(seconds=after_seconds),
        payload={"dosing_session_id": dosing_session_id},
    )
