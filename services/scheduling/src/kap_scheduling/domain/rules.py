"""Scheduling rules: their ids, their configurable defaults (clinical rulebook
sections 1.1, 1.2, 1.6, 2.2, 2.5, 4, 7) and where each one gates.

A rule that forbids an action answers **409** with `error.code` = the rule id and
a message a coordinator understands. Ids from the rulebook keep their names;
`SCH-*` ids are scheduling's own (the rulebook has no id for them).

| rule id | gates | forbids (default) |
|---|---|---|
| `SCH-PLAN-1` | book, reschedule; dosing check-in | no active treatment plan: not screened eligible yet, plan still awaiting a care team, or plan suspended by an ineligible screening (a suspended plan still takes integration sessions while an integration is owed) |
| `SCH-CONSENT-1` | book, reschedule, check-in | treatment consent never recorded, or withdrawn (the latest `ConsentRecorded` of scope `treatment` wins) |
| `SCH-SITE-1` | book, reschedule | room not at the patient's site, or a clinician who does not work there |
| `KAP-3` | book dosing | a ketamine dosing session without a prescriber (it also needs a therapist at the chair and a room; esketamine names the plan's therapist without holding them); ketamine (IV/IM/sublingual/oral) chair time under 3 h |
| `SPR-CERT-2` | book esketamine dosing | no prescriber named (onsite during administration and monitoring); one prescriber may supervise several overlapping esketamine chairs at the site (optional cap `esketamine_chairs_per_prescriber`) |
| `SPR-SCH-4` | book esketamine dosing; book anything in its room | chair time under 2 h; the room is also held 30 min before an esketamine dosing session for check-in and settling (no back-to-back 2 h sessions in one room) |
| `KAP-2` | book integration | an integration session with another therapist than the plan's (the one who was with the patient at dosing) |
| `SPR-ENR-1` | book, check in esketamine dosing | no granted REMS enrollment (consent scope `rems_enrollment`) |
| `SPR-CERT-1` | book, check in esketamine dosing | the site is not REMS certified on the session's (local) date; `rems_certified_until` is the last valid day |
| `SCH-HOLD-1` | book, reschedule, check in dosing | an open safety hold (`SafetyConcernRaised`, e.g. PHQ-9 item 9, MBC-1) until a prescriber clears it |
| `MBC-1` | (opens a `SCH-HOLD-1` hold) | a re-screening (`PatientScreened` citing `MBC-1`, not a review) of a patient who has a plan |
| `KAP-1` | book dosing | fewer completed preparation sessions than the protocol's minimum (KAP protocols 2, esketamine 0) |
| `SCH-COURSE-1` | book dosing | more dosing sessions than the protocol plans (IV 6, esketamine 12, KAP 6) |
| `SCH-INT-1` | book integration | an integration session that starts before any dosing session has ended |
| `SPR-SCH-2` | book esketamine dosing | more than 2 dosing sessions in a treatment week in weeks 1-4, more than 1 from week 5; treatment weeks are 7-day blocks from the local day of the first dosing session (not ISO weeks) |
| `KET-SER-1` | book IV/IM dosing | more than 3 dosing sessions in a treatment week |
| `SCH-ALT-1` | book KAP sublingual/oral dosing | a dosing session with no integration session booked since the previous one |
| `SCH-HOURS-1` | book, reschedule | a session outside a clinician's working hours (site time zone) |
| `SCH-CONFLICT-PATIENT` | book, reschedule | the patient is already booked at an overlapping time |
| `SCH-CONFLICT-CLINICIAN` | book, reschedule | the therapist or prescriber is already booked at an overlapping time |
| `SCH-CONFLICT-ROOM` | book, reschedule | the room is already booked at an overlapping time |
| `SCH-STATE-1` | reschedule, cancel, check-in, complete | the session's status does not allow it (e.g. checking in a cancelled session) |
| `SCH-CHECKIN-1` | check-in | outside the check-in window (60 min before to 30 min after the start) |
| `SPR-PRE-1` | check in esketamine dosing | food less than 2 h ago |
| `SPR-PRE-2` | check in esketamine dosing | liquids less than 30 min ago |
| `SPR-PRE-8` | check in esketamine dosing | transport home not arranged |
| `KET-PRE-1` | check in ketamine dosing | solids less than 4 h or clear liquids less than 2 h ago |
| `KET-PRE-3` | check in ketamine dosing | no escort / transport arranged |
| `SCH-DIS-1` | complete dosing | monitoring has not sent `DischargeCleared` for the session (it applies SPR-MON-3 / KET-DIS-1) |
| `SCH-HOLD-2` | clear a hold | the hold was already cleared |

Soft warnings (listed in the plan's `warnings`, never a 409): `SPR-SCH-3` two
esketamine dosing sessions less than 48 h apart; `KAP-4` more than 14 days between
dosing sessions of a ketamine course; `KAP-2` no integration session booked 24 h
before it is due (48 h into the 72 h).

Not a 409: `SPR-SCH-1` publishes `InductionReviewDue` (the prescriber evaluates the
benefit) after the 8th completed esketamine dosing session or at the end of treatment
week 4, whichever comes first, once. `KAP-2` also sets a deadline when a dosing session completes (72 h,
7 days for oral); `IntegrationOverdue` is published when it passes without a
completed integration session.

Thresholds are inclusive on the allowed side ("at least 2 h" passes at 2 h 0 min);
every number is a field of `SchedulingRules`, overridable per site (RULES_FILE).
"""  # noqa: E501 - a table

from __future__ import annotations

from pydantic import Field

from kap_shared.events.enums import Phase, Route, Severity
from kap_shared.rules import RulesModel

# Rule ids, in one place.
PLAN = "SCH-PLAN-1"
CONSENT = "SCH-CONSENT-1"
SITE = "SCH-SITE-1"
DOSING_TEAM = "KAP-3"
ESKETAMINE_CHAIR = "SPR-SCH-4"
SAME_THERAPIST = "KAP-2"
REMS_ENROLLMENT = "SPR-ENR-1"
REMS_CERTIFICATION = "SPR-CERT-1"
HOLD = "SCH-HOLD-1"
# A re-screening citing PHQ-9 item 9 (intake's reason) opens a hold like SafetyConcernRaised.
SELF_HARM_AT_SCREENING = "MBC-1"
HOLD_CLEARED = "SCH-HOLD-2"
PREPARATION = "KAP-1"
COURSE = "SCH-COURSE-1"
INTEGRATION_AFTER_DOSING = "SCH-INT-1"
ESKETAMINE_FREQUENCY = "SPR-SCH-2"
KETAMINE_FREQUENCY = "KET-SER-1"
ALTERNATION = "SCH-ALT-1"
HOURS = "SCH-HOURS-1"
CONFLICT_PATIENT = "SCH-CONFLICT-PATIENT"
CONFLICT_CLINICIAN = "SCH-CONFLICT-CLINICIAN"
CONFLICT_ROOM = "SCH-CONFLICT-ROOM"
STATE = "SCH-STATE-1"
CHECK_IN_WINDOW = "SCH-CHECKIN-1"
ESKETAMINE_FOOD = "SPR-PRE-1"
ESKETAMINE_LIQUIDS = "SPR-PRE-2"
ESKETAMINE_TRANSPORT = "SPR-PRE-8"
KETAMINE_FASTING = "KET-PRE-1"
KETAMINE_ESCORT = "KET-PRE-3"
DISCHARGE = "SCH-DIS-1"
PRESCRIBER_ONSITE = "SPR-CERT-2"
# Not a gate: the prescriber's "evaluate benefit" task (InductionReviewDue).
INDUCTION_REVIEW = "SPR-SCH-1"
# Soft: warnings on the plan, not gates.
ESKETAMINE_SPACING = "SPR-SCH-3"
KETAMINE_GAP = "KAP-4"


class SchedulingRules(RulesModel):
    """Every scheduling threshold, with the clinical rulebook's default.

    Loaded with `SiteRules.load(SchedulingRules, RULES_FILE)`; an unknown key in the
    file fails at start-up rather than at the first booking.
    """

    # KAP-1: completed preparation sessions before dosing can be booked, per protocol.
    # KAP protocols (sublingual/oral and IV/IM ketamine with integration): rulebook 4,
    # default 2. Esketamine (Spravato REMS): the label and REMS ask for none.
    kap_min_preparation_sessions: int = Field(default=2, ge=0, le=20)
    esketamine_min_preparation_sessions: int = Field(default=0, ge=0, le=20)

    # SPR-SCH-4: chair time an esketamine dosing slot reserves (>= 2 h of monitoring)...
    esketamine_min_chair_minutes: int = Field(default=120, ge=1)
    # ...plus check-in and settling before it starts [S: clinics quote 2-2.5 h a session]:
    # the room is held this long before an esketamine dosing session.
    esketamine_check_in_minutes: int = Field(default=30, ge=0, le=240)
    # SPR-CERT-2: one onsite prescriber may supervise several esketamine chairs at once;
    # at most this many overlapping esketamine dosing sessions each (null: no limit) [K].
    esketamine_chairs_per_prescriber: int | None = Field(default=None, ge=1, le=50)
    # SPR-SCH-1: induction = 8 esketamine dosing sessions; the prescriber evaluates the
    # benefit after the 8th completed, or at the end of week `esketamine_induction_weeks`.
    esketamine_induction_sessions: int = Field(default=8, ge=1, le=50)
    # KAP-3: chair time of a ketamine dosing slot (infusion + >= 60 min recovery: 3 h).
    ketamine_min_chair_minutes: int = Field(default=180, ge=1)

    # SPR-SCH-2: esketamine TRD, at most 2 a week in weeks 1-4, then 1 a week.
    esketamine_induction_weeks: int = Field(default=4, ge=1)
    esketamine_induction_max_per_week: int = Field(default=2, ge=1)
    esketamine_later_max_per_week: int = Field(default=1, ge=1)
    # KET-SER-1: IV/IM acute series, thrice weekly at most.
    ketamine_max_dosing_per_week: int = Field(default=3, ge=1)
    # SCH-ALT-1: KAP sublingual/oral dosing and integration sessions alternate (rulebook 4).
    kap_alternate_dosing_and_integration: bool = True

    # SPR-SCH-3 (soft): clinics keep esketamine induction doses >= 48 h apart.
    esketamine_min_gap_hours: float = Field(default=48, ge=0)
    # KAP-4 (soft): more than 14 days between dosing sessions of an acute ketamine course.
    ketamine_max_gap_days: float = Field(default=14, gt=0)

    # KAP-2: integration with the same therapist within 72 h of a dosing session (oral: 7 days).
    integration_due_hours: float = Field(default=72, gt=0)
    integration_due_hours_oral: float = Field(default=168, gt=0)
    # KAP-2 (soft): warn on the plan when no integration session is booked this long
    # before it is due (rulebook 7: "warn at 48 h" of the 72 h) [S].
    integration_warn_hours_before_due: float = Field(default=24, ge=0)

    # SPR-PRE-1 / SPR-PRE-2: esketamine, no food for 2 h, no liquids for 30 min.
    esketamine_food_fast_minutes: int = Field(default=120, ge=0)
    esketamine_liquid_fast_minutes: int = Field(default=30, ge=0)
    # KET-PRE-1: ketamine (IV/IM/KAP), solids 4 h, clear liquids 2 h.
    ketamine_solids_fast_minutes: int = Field(default=240, ge=0)
    ketamine_clear_liquids_fast_minutes: int = Field(default=120, ge=0)

    # SCH-CHECKIN-1: check-in opens this long before the start and closes this long after it.
    check_in_opens_minutes_before: int = Field(default=60, ge=0)
    check_in_closes_minutes_after: int = Field(default=30, ge=0)

    # SCH-HOLD-1: which SafetyConcernRaised severities put dosing on hold (all, by default).
    hold_severities: frozenset[Severity] = frozenset(Severity)

    # Input sanity (422, not a rule): the longest session that can be booked.
    max_session_minutes: int = Field(default=720, ge=1)

    def min_preparation_sessions(self, route: Route) -> int:
        """KAP-1: preparation sessions a plan on `route` completes before dosing."""
        if route is Route.INTRANASAL_ESKETAMINE:
            return self.esketamine_min_preparation_sessions
        return self.kap_min_preparation_sessions

    def chair_check_in_minutes(self, route: Route, phase: Phase) -> int:
        """SPR-SCH-4: how long before its start a session holds its room."""
        if route is Route.INTRANASAL_ESKETAMINE and phase is Phase.DOSING:
            return self.esketamine_check_in_minutes
        return 0

    def min_chair_minutes(self, route: Route) -> tuple[str, int]:
        """The rule id and the chair time a dosing session on `route` must reserve."""
        if route is Route.INTRANASAL_ESKETAMINE:
            return ESKETAMINE_CHAIR, self.esketamine_min_chair_minutes
        return DOSING_TEAM, self.ketamine_min_chair_minutes

    def integration_due_after_hours(self, route: Route) -> float:
        return (
            self.integration_due_hours_oral if route is Route.ORAL else self.integration_due_hours
        )
