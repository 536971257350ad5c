"""SPR-PMF-1 use cases: open a form when an esketamine dose is given, assemble it
from the record, complete the fields no event carries, submit it, and the durable
timers that remind (PmfReminder) and report it overdue (PmfOverdue). Submitting
cancels whatever is pending, in the same transaction that records it."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from kap_shared.events import DoseAdministered, PmfOpened, PmfOverdue, PmfReminder, PmfSubmitted
from kap_shared.events.envelope import Envelope, Payload, as_utc, envelope_fields
from kap_shared.events.records import (
    PmfOpenedData,
    PmfOverdueData,
    PmfReminderData,
    PmfSubmittedData,
)
from kap_shared.http.errors import ApiError, NotFound, RuleViolation
from kap_shared.logging import get_logger
from kap_shared.messaging import timers
from kap_shared.messaging.timers import ScheduledJob, TimerHandler
from kap_shared.messaging.unit_of_work import UnitOfWork
from kap_shared.rules import SiteRules

from ..adapters import repository as repo
from ..adapters.tables import Entry, PlanFact, PmfForm, Reading, SessionFact
from ..domain import pmf as domain
from ..domain.rules import PMF_RULE, RecordsRules

log = get_logger(__name__)

PRODUCER = "records"
REMINDER, OVERDUE = "pmf-reminder", "pmf-overdue"
_NAMESPACE = uuid.UUID("6f0d3a52-1c5e-4b8e-9a57-0e4b5d1c2a10")


def pmf_id_for(session_id: str) -> str:
    """One form per session, with the same id however often the topics are replayed."""
    return str(uuid.uuid5(_NAMESPACE, session_id))


def _fields(form: PmfForm, causation_id: str | None = None) -> dict[str, Any]:
    return envelope_fields(form, producer=PRODUCER, causation_id=causation_id)


async def open_pmf(uow: UnitOfWork, dose: DoseAdministered, rules: RecordsRules) -> None:
    session_id = dose.data.session_id
    if await repo.pmf_of_session(uow.session, session_id) is not None:
        return  # opened by the session's first device
    session_at = dose.data.administered_at
    form = PmfForm(
        pmf_id=pmf_id_for(session_id),
        session_id=session_id,
        patient_id=dose.patient_id,
        site_id=dose.site_id,
        correlation_id=dose.correlation_id,
        opened_at=dose.occurred_at,
        session_at=session_at,
        due_by=domain.due_by(session_at, rules),
    )
    uow.session.add(form)
    uow.publish(
        PmfOpened(
            **_fields(form, str(dose.event_id)),
            data=PmfOpenedData(pmf_id=form.pmf_id, session_id=session_id, due_by=form.due_by),
        )
    )
    for n, (when, days_left) in enumerate(domain.reminder_times(session_at, rules), start=1):
        await timers.schedule(
            uow.session,
            kind=REMINDER,
            key=f"pmf:{form.pmf_id}:reminder:{n}",
            due_at=when,
            payload={"pmf_id": form.pmf_id, "days_left": days_left},
        )
    await timers.schedule(
        uow.session,
        kind=OVERDUE,
        key=f"pmf:{form.pmf_id}:overdue",
        due_at=form.due_by,
        payload={"pmf_id": form.pmf_id},
    )
    log.info("pmf.opened", pmf_id=form.pmf_id, session_id=session_id)


# -- assembling ----------------------------------------------------------------------------


async def facts_of(session: AsyncSession, form: PmfForm) -> domain.SessionFacts:
    entries = await repo.listed(session, Entry, Entry.session_id == form.session_id)
    readings = await repo.listed(session, Reading, Reading.session_id == form.session_id)
    fact = await session.get(SessionFact, form.session_id)
    prescriber = fact.prescriber_id if fact else None
    if fact is not None and prescriber is None:
        plan = await session.get(PlanFact, fact.plan_id)
        prescriber = plan.prescriber_id if plan else None
    doses, alerts, resolved = [], {}, {}
    discharge = None
    for entry in entries:
        d = entry.data
        if entry.event_type == "DoseAdministered":
            doses.append(
                domain.DoseFact(
                    administered_at=datetime.fromisoformat(d["administered_at"]),
                    dose_mg=float(d["dose_mg"]),
                    device_number=d.get("device_number"),
                    lot_number=d.get("lot_number"),
                    concomitant_medications=d.get("concomitant_medications"),
                )
            )
        elif entry.event_type == "VitalsAlert" and d.get("severity") == "critical":
            alerts[d["alert_id"]] = (entry, d)
        elif entry.event_type == "VitalsAlertResolved":
            resolved[d["alert_id"]] = datetime.fromisoformat(d["resolved_at"])
        elif entry.event_type == "DischargeCleared":
            discharge = domain.DischargeFact(
                first_dose_at=datetime.fromisoformat(d["first_dose_at"]),
                cleared_at=datetime.fromisoformat(d["cleared_at"]),
                observed_minutes=float(d["observed_minutes"]),
                signed_by=d.get("signed_by"),
            )
    return domain.SessionFacts(
        session_id=form.session_id,
        session_at=as_utc(form.session_at),
        prescriber_id=prescriber,
        nurse_id=fact.nurse_id if fact else None,
        doses=doses,
        readings=[repo.reading_fact(r) for r in readings],
        critical_alerts=[
            domain.AlertFact(
                alert_id=alert_id,
                rule_id=d["rule_id"],
                metric=d["metric"],
                value=float(d["value"]),
                raised_at=as_utc(entry.occurred_at),
                resolved_at=resolved.get(alert_id),
            )
            for alert_id, (entry, d) in alerts.items()
        ],
        discharge=discharge,
        completions=form.completions,
        carried_over=await repo.previous_completions(session, form),
    )


async def view_of(session: AsyncSession, form: PmfForm, rules: RecordsRules) -> dict[str, Any]:
    """The form as `GET /pmf/{id}` shows it (README: "PMF JSON")."""
    sections = domain.assemble(await facts_of(session, form), rules)
    missing = sections.pop("missing_fields")
    status = domain.status_of(missing, submitted=form.submitted_at is not None)
    return {
        "pmf_id": form.pmf_id,
        "session_id": form.session_id,
        "patient_id": form.patient_id,
        "site_id": form.site_id,
        "status": status.value,
        "rule_id": PMF_RULE,
        "due_by": as_utc(form.due_by).isoformat(),
        "opened_at": as_utc(form.opened_at).isoformat(),
        "missing_fields": missing,
        "fields": sections,
        "submission": (
            {
                "submitted_at": as_utc(form.submitted_at).isoformat(),
                "submitted_by": form.submitted_by,
                "confirmation": form.confirmation,
            }
            if form.submitted_at
            else None
        ),
    }


async def load(session: AsyncSession, pmf_id: str) -> PmfForm:
    form = await session.get(PmfForm, pmf_id)
    if form is None:
        raise NotFound("PMF", pmf_id)
    return form


def _refuse_if_submitted(form: PmfForm) -> None:
    if form.submitted_at is not None:
        raise ApiError(
            409,
            "PMF-STATE-1",
            "PMF-STATE-1: the form was already submitted to the REMS",
            {"submitted_at": as_utc(form.submitted_at).isoformat()},
        )


async def complete(
    uow: UnitOfWork, form: PmfForm, values: Mapping[str, Any], rules: RecordsRules
) -> dict[str, Any]:
    _refuse_if_submitted(form)
    form.completions = {**form.completions, **values}
    uow.session.add(form)
    await uow.commit()
    return await view_of(uow.session, form, rules)


async def submit(
    uow: UnitOfWork,
    form: PmfForm,
    *,
    by: str,
    confirmation: str | None,
    now: datetime,
    rules: RecordsRules,
) -> dict[str, Any]:
    _refuse_if_submitted(form)
    view = await view_of(uow.session, form, rules)
    if view["missing_fields"]:
        raise RuleViolation(
            PMF_RULE,
            "the Patient Monitoring Form is incomplete; complete the missing fields first",
            {"missing_fields": view["missing_fields"]},
        )
    form.submitted_at, form.submitted_by, form.confirmation = now, by, confirmation
    uow.session.add(form)
    pending = await uow.session.exec(
        select(ScheduledJob.key)
        .where(col(ScheduledJob.key).startswith(f"pmf:{form.pmf_id}:"))
        .where(ScheduledJob.status == timers.PENDING)
    )
    for key in list(pending):
        await timers.cancel(uow.session, key)
    uow.publish(
        PmfSubmitted(
            **_fields(form),
            data=PmfSubmittedData(
                pmf_id=form.pmf_id,
                session_id=form.session_id,
                submitted_at=now,
                submitted_by=by,
                confirmation=confirmation,
            ),
        )
    )
    await uow.commit()
    log.info("pmf.submitted", pmf_id=form.pmf_id)
    return await view_of(uow.session, form, rules)


# -- durable timers -------------------------------------------------------------------------


def timer_handlers(site_rules: SiteRules[RecordsRules]) -> dict[str, TimerHandler]:
    async def notice(
        job: ScheduledJob,
        uow: UnitOfWork,
        event: Callable[..., Envelope],
        data: Callable[..., Payload],
        **extra: Any,
    ) -> PmfForm | None:
        """Publish `event` about the timer's form with what it still misses; a form
        submitted meanwhile (or gone) is neither reminded of nor overdue: None."""
        form = await uow.session.get(PmfForm, job.payload["pmf_id"])
        if form is None or form.submitted_at is not None:
            return None
        view = await view_of(uow.session, form, site_rules.for_site(form.site_id))
        details = data(
            pmf_id=form.pmf_id,
            session_id=form.session_id,
            due_by=as_utc(form.due_by),
            missing_fields=view["missing_fields"],
            **extra,
        )
        uow.publish(event(**_fields(form), data=details))
        return form

    async def remind(job: ScheduledJob, uow: UnitOfWork) -> None:
        days_left = int(job.payload["days_left"])
        await notice(job, uow, PmfReminder, PmfReminderData, days_left=days_left)

    async def overdue(job: ScheduledJob, uow: UnitOfWork) -> None:
        if form := await notice(job, uow, PmfOverdue, PmfOverdueData):
            log.info("pmf.overdue", pmf_id=form.pmf_id)

    return {REMINDER: remind, OVERDUE: overdue}
