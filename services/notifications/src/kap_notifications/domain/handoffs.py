"""Handoffs across phases (issue 11), pure: which handoff row an event calls for,
the texts (ids, codes and numbers only: no names, no dates, no free text) and when
the next digest is due. The rows themselves are `routing.HANDOFF_TABLE`."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

from kap_shared.events.enums import Instrument, MeasureFollowUp, Phase
from kap_shared.events.monitoring import OutcomeRecordedData

from .rules import NotificationRules


def _num(value: float) -> str:
    return f"{value:g}"


# -- outcomes (MBC-2, MBC-3, MBC-4, SPR-SCH-1) -------------------------------------------------


@dataclass(frozen=True)
class OutcomeMemory:
    """What was already seen for the patient (PatientProgress)."""

    previous_total: float | None = None  # the last total of the same instrument
    response_told: bool = False
    remission_told: bool = False
    induction_review_due: bool = False  # InductionReviewDue seen (SPR-SCH-1)
    no_response_told: bool = False


def outcome_rule(
    d: OutcomeRecordedData, seen: OutcomeMemory, rules: NotificationRules
) -> str | None:
    """The one handoff row an OutcomeRecorded calls for, most pressing first; None when
    nothing changed that a clinician needs to hear (no flood on every measure)."""
    follow_up = worsening(d, seen, rules)
    if d.instrument is Instrument.PHQ9:
        if seen.induction_review_due and not d.response and not seen.no_response_told:
            return "induction-no-response"
        if follow_up is MeasureFollowUp.MBC_2:
            return "outcome-worsening-phq9"
        if d.remission and not seen.remission_told:
            return "outcome-remission"
        if d.response and not seen.response_told and not seen.remission_told:
            return "outcome-response"
        return None
    if follow_up is MeasureFollowUp.MBC_4:
        return "outcome-worsening"
    return None


def worsening(
    d: OutcomeRecordedData, seen: OutcomeMemory, rules: NotificationRules
) -> MeasureFollowUp | None:
    """MBC-2 (PHQ-9) or MBC-4 (GAD-7, PCL-5), as monitoring's measure rules decided it
    (`follow_up`: one place decides). Only an event without `follow_up` (a monitoring
    from before issue 8) is judged here, with the same rulebook limits."""
    if d.follow_up is not None:
        for rule in (MeasureFollowUp.MBC_2, MeasureFollowUp.MBC_4):
            if rule.value in d.follow_up:
                return rule
        return None
    rise = d.total - seen.previous_total if seen.previous_total is not None else None
    if d.instrument is Instrument.PHQ9:
        if d.total >= rules.mbc2_phq9_total or (rise is not None and rise >= rules.mbc2_phq9_rise):
            return MeasureFollowUp.MBC_2
        return None
    if d.instrument is Instrument.GAD7 and d.total >= rules.mbc4_gad7_total:
        return MeasureFollowUp.MBC_4
    if d.instrument is Instrument.PCL5 and rise is not None and rise >= rules.mbc4_pcl5_rise:
        return MeasureFollowUp.MBC_4
    return None


def phq9_summary(latest: dict[str, object] | None) -> str:
    """'PHQ-9 18 (baseline 22, change -18%, no response)' from PatientProgress.latest_phq9."""
    if not latest:
        return "no PHQ-9 recorded since baseline"
    total = float(str(latest["total"]))
    parts = [f"PHQ-9 {_num(total)}"]
    if latest.get("baseline_total") is not None:
        parts.append(f"baseline {_num(float(str(latest['baseline_total'])))}")
    if latest.get("change_pct") is not None:
        parts.append(f"change {_num(round(float(str(latest['change_pct'])), 1))}%")
    verdict = (
        "remission"
        if latest.get("remission")
        else "response"
        if latest.get("response")
        else "no response"
    )
    return f"{parts[0]} ({', '.join([*parts[1:], verdict])})"


def outcome_text(
    rule_key: str, patient_id: str, d: OutcomeRecordedData, previous: float | None
) -> tuple[str, str]:
    baseline = f", baseline {_num(d.baseline_total)}" if d.baseline_total is not None else ""
    change = f", change {_num(round(d.change_pct, 1))}%" if d.change_pct is not None else ""
    prev = f", previous {_num(previous)}" if previous is not None else ""
    score = f"{d.instrument.value} {_num(d.total)} ({d.band}{baseline}{change}{prev})"
    texts = {
        "induction-no-response": (
            "TASK: no response at the end of induction",
            f"Patient {patient_id}: {score}, no response (SPR-SCH-1, MBC-3). "
            "Evaluate the need for continued treatment.",
        ),
        "outcome-worsening-phq9": (
            "Depression score worsening",
            f"Patient {patient_id}: {score} (MBC-2). Review the plan.",
        ),
        "outcome-worsening": (
            "Outcome worsening",
            f"Patient {patient_id}: {score} (MBC-4). Review in the next integration session.",
        ),
        "outcome-remission": (
            "Remission",
            f"Patient {patient_id}: {score}, remission against baseline (MBC-3).",
        ),
        "outcome-response": (
            "Response",
            f"Patient {patient_id}: {score}, response against baseline (MBC-3).",
        ),
    }
    return texts[rule_key]


# -- sessions and phases ---------------------------------------------------------------------


def _hours_left(due_by: datetime, now: datetime) -> str:
    """Hours until the KAP-2 deadline, to a tenth (0 once passed): texts carry no dates."""
    return _num(round(max(0.0, (due_by - now).total_seconds() / 3600), 1))


def window_text(
    patient_id: str, dosing_session_id: str, due_by: datetime | None, now: datetime
) -> tuple[str, str]:
    """KAP-2: the integration window, its deadline as hours from now (no dates in texts)."""
    if due_by is not None:
        deadline = f"within {_hours_left(due_by, now)} h (KAP-2)"
    else:
        deadline = "within the KAP-2 window (72 h; oral 7 days)"
    return (
        "Integration window open",
        f"Patient {patient_id}: dosing session {dosing_session_id} ended. "
        f"Book the integration session {deadline}.",
    )


def warning_text(
    patient_id: str, dosing_session_id: str, due_by: datetime | None, now: datetime
) -> tuple[str, str]:
    left = f" {_hours_left(due_by, now)} h left." if due_by is not None else ""
    return (
        "Integration session not booked",
        f"Patient {patient_id}: no integration session booked after dosing session "
        f"{dosing_session_id} (KAP-2).{left} Book one.",
    )


def progress_text(completed: int | None, planned: int | None) -> str:
    if completed is None:
        return "dosing progress unknown"
    return f"dosing {completed}/{planned}" if planned else f"dosing {completed} completed"


def next_dose(completed: int | None, planned: int | None, open_holds: int | None) -> str:
    """Whether the next dose may go ahead, as far as notifications can know from events."""
    if completed is not None and planned is not None and completed >= planned:
        return "dosing course complete"
    if open_holds is None:
        return "next dose: hold status unknown, check the plan"
    if open_holds > 0:
        return f"next dose ON HOLD ({open_holds} open safety hold(s), SCH-HOLD-1)"
    return "next dose clear to go ahead"


def integration_done_text(
    patient_id: str,
    session_id: str,
    completed: int | None,
    planned: int | None,
    open_holds: int | None,
) -> tuple[str, str]:
    return (
        "Integration session completed",
        f"Patient {patient_id}: integration session {session_id} completed; "
        f"{progress_text(completed, planned)}; {next_dose(completed, planned, open_holds)}.",
    )


def phase_text(
    patient_id: str, plan_id: str, from_phase: Phase | None, to_phase: Phase
) -> tuple[str, str]:
    start = from_phase.value if from_phase else "start"
    if from_phase is Phase.DOSING and to_phase is Phase.INTEGRATION:
        return (
            "Dosing course complete",
            f"Patient {patient_id}, plan {plan_id}: all planned dosing sessions done; "
            "phase dosing -> integration.",
        )
    return (
        "Phase advanced",
        f"Patient {patient_id}, plan {plan_id}: phase {start} -> {to_phase.value}.",
    )


def induction_text(
    patient_id: str, plan_id: str, completed: int, latest_phq9: dict[str, object] | None
) -> tuple[str, str]:
    summary = phq9_summary(latest_phq9)
    no_response = bool(latest_phq9) and not (
        latest_phq9 and (latest_phq9.get("response") or latest_phq9.get("remission"))
    )
    title = (
        "TASK: no response at the end of induction"
        if no_response
        else "TASK: evaluate benefit at the end of induction"
    )
    return (
        title,
        f"Patient {patient_id}, plan {plan_id}: {completed} induction sessions done; "
        f"{summary} (SPR-SCH-1, MBC-3). Evaluate the need for continued treatment.",
    )


# -- the digest ------------------------------------------------------------------------------


def next_digest_at(now: datetime, rules: NotificationRules) -> datetime:
    """The first digest slot after `now`: the site's local digest time, then every period."""
    zone = ZoneInfo(rules.digest_timezone)
    local = now.astimezone(zone)
    anchor = datetime.combine(local.date(), time.fromisoformat(rules.digest_local_time), zone)
    period = timedelta(seconds=rules.digest_period_seconds)
    if anchor > now:
        anchor -= ((anchor - now) // period) * period
        return anchor if anchor > now else anchor + period
    return anchor + ((now - anchor) // period + 1) * period


def digest_text(items: list[tuple[str, str, str]]) -> tuple[str, str]:
    """items: (rule key, patient id, notification id), oldest first."""
    lines = "; ".join(f"{rule} patient {patient} ({nid})" for rule, patient, nid in items)
    return (f"Daily digest: {len(items)} handoff(s)", f"Waiting on you: {lines}.")
