"""Monitoring's clinical rules as configuration (clinical rulebook 1.2-1.4, 2.4,
2.6, 3 and 7). Every threshold has the rulebook's default and cites its rule id;
a clinic overrides them for the network or per site through RULES_FILE
(`kap_shared.rules.SiteRules`).

Boundary convention (rulebook section 7): a threshold written "> X" is strict,
so field names say the direction: `_above` / `_below` are strict, `_at_least` /
`_at_most` / `_at_or_below` are inclusive.

Rule ids that appear in alerts, 409 responses and events:

| id | what |
|---|---|
| `SPR-PRE-3` | esketamine: a nasal corticosteroid/decongestant used that day: 60 min before |
| `SPR-PRE-4` | a pre-dose BP must be recorded before the first dose (default: esketamine) |
| `SPR-PRE-5` | pre-dose BP above 140/90: warning; a prescriber decides before dosing |
| `KET-MON-BP` | BP above 180/110 twice at most 5 min apart, or above 200/120 once: critical |
| `SPR-MON-6` | hypertensive-crisis symptoms with any reading: critical, emergency pathway |
| `KET-MON-HR` | HR above 120 sustained for 5 min: critical |
| `KET-MON-SPO2` | SpO2 below 92 % sustained for 60 s, or below 90 % at any reading: critical |
| `KET-MON-RR` | respiratory rate below 8/min: critical |
| `KET-MON-RR-SOFT` | respiratory rate below 10 or above 24/min: warning, recheck |
| `KET-MON-SED` | MOAA/S 0 (unresponsive): critical, emergency |
| `KET-MON-SED-SOFT` | MOAA/S 3 or less: warning, increase observation |
| `SPR-MON-1` | BP check 40 min after the first dose (reminder at 35, overdue at 50) |
| `SPR-MON-3` | esketamine: discharge at least 120 min after the first device |
| `KET-DIS-6` | ketamine (IV/IM/sublingual/oral): discharge at least N min after the end of dosing |
| `KET-DIS-2` | discharge needs the latest SpO2 at least 92 % |
| `KET-DIS-3` | discharge needs the latest BP/HR/RR in range (soft limits or baseline +/-20 %) |
| `KET-DIS-4` | discharge needs the patient alert (latest MOAA/S 5) |
| `SPR-PRE-7` | esketamine: concomitant medication classes recorded with the session's first dose |
| `SPR-ADM-1` | esketamine: 28 mg a device (dose_mg agrees with one device) |
| `SPR-ADM-2` | esketamine: at least 5 min between devices |
| `SPR-ADM-3` | esketamine: 84 mg (a third device) only after an earlier session at 56 mg |
| `SPR-MON-2` | esketamine: SpO2 recorded during monitoring (a recent reading at discharge) |
| `SPR-DIS-1` | esketamine: a clinician's signed stability assessment (MON-DIS-3 for ketamine) |
| `SPR-GOAL` | sedation, dissociation and respiratory depression resolved at discharge |
| `KET-DIS-1` | ketamine: Aldrete at least 9, or back to the pre-dose score |
| `KET-DIS-5` | ketamine: escort confirmed at discharge |
| `KET-MON-HR-LOW` | HR below 50/min: critical [K] |
| `KET-MON-SPO2` sentinel | SpO2 below 75 %: critical, sentinel |
| `MBC-1` | PHQ-9 item 9 of 1 or more: safety concern, whatever the total |
| `MBC-2` | PHQ-9 total 20 or more, or a rise of 5 or more from the previous score |
| `MBC-3` | response (at least 50 % drop from baseline) and remission (PHQ-9 below 5) |
| `MBC-4` | GAD-7 15 or more, or a PCL-5 rise of 10 or more |
| `MBC-GAD7-REFER` | GAD-7 10 or more: refer for further evaluation |
| `MBC-PCL5-PROVISIONAL` | PCL-5 provisional DSM-5 PTSD (items >= 2: 1 B, 1 C, 2 D, 2 E) |
"""

from __future__ import annotations

from typing import Self

from pydantic import BaseModel, ConfigDict, Field, model_validator

from kap_shared.clinical.instruments import PCL5_CLUSTERS, PCL5_ENDORSED_AT
from kap_shared.clinical.thresholds import (
    GAD7_FOLLOW_UP_AT,
    MBC_1_PHQ9_ITEM9_AT_LEAST,
    MBC_2_PHQ9_RISE_AT_LEAST,
    MBC_2_PHQ9_TOTAL_AT_LEAST,
    MBC_4_GAD7_TOTAL_AT_LEAST,
    MBC_4_PCL5_RISE_AT_LEAST,
    SPR_PRE_5_DIASTOLIC_ABOVE,
    SPR_PRE_5_SYSTOLIC_ABOVE,
)
from kap_shared.events.enums import Agent, MeasureFollowUp, Role, Route, Severity

SPR_PRE_3 = "SPR-PRE-3"
SPR_PRE_4 = "SPR-PRE-4"
SPR_PRE_7 = "SPR-PRE-7"
SPR_ADM_1 = "SPR-ADM-1"
SPR_ADM_2 = "SPR-ADM-2"
SPR_ADM_3 = "SPR-ADM-3"
SPR_MON_2 = "SPR-MON-2"
SPR_DIS_1 = "SPR-DIS-1"
SPR_GOAL = "SPR-GOAL"
KET_DIS_1 = "KET-DIS-1"
KET_DIS_5 = "KET-DIS-5"
KET_MON_HR_LOW = "KET-MON-HR-LOW"
SPR_PRE_5 = "SPR-PRE-5"
KET_MON_BP = "KET-MON-BP"
SPR_MON_6 = "SPR-MON-6"
KET_MON_HR = "KET-MON-HR"
KET_MON_SPO2 = "KET-MON-SPO2"
KET_MON_RR = "KET-MON-RR"
KET_MON_RR_SOFT = "KET-MON-RR-SOFT"
KET_MON_SED = "KET-MON-SED"
KET_MON_SED_SOFT = "KET-MON-SED-SOFT"
SPR_MON_1 = "SPR-MON-1"
SPR_MON_3 = "SPR-MON-3"
KET_DIS_2 = "KET-DIS-2"
KET_DIS_3 = "KET-DIS-3"
KET_DIS_4 = "KET-DIS-4"
KET_DIS_6 = "KET-DIS-6"
MBC_1 = "MBC-1"
# The follow-ups OutcomeRecorded carries: the contract's vocabulary (two of them are
# measure rules of rulebook 3.1 without an id there).
MBC_2 = MeasureFollowUp.MBC_2
MBC_4 = MeasureFollowUp.MBC_4
MBC_GAD7_REFER = MeasureFollowUp.MBC_GAD7_REFER
MBC_PCL5_PROVISIONAL = MeasureFollowUp.MBC_PCL5_PROVISIONAL
# Monitoring's own ids for conditions the rulebook does not number.
MON_WINDOW_1 = "MON-WINDOW-1"  # the session's monitoring window is not open
MON_DIS_1 = "MON-DIS-1"  # discharge needs at least one recorded dose
MON_DIS_2 = "MON-DIS-2"  # discharge needs no open critical alert
MON_DOSE_1 = "MON-DOSE-1"  # one agent per session; each esketamine device once (SPR-ADM-1)
MON_DOSE_2 = "MON-DOSE-2"  # administered_at inside the monitoring window (no backdating)
MON_DOSE_3 = "MON-DOSE-3"  # agent and route of a dose follow the patient's plan
MON_DIS_3 = "MON-DIS-3"  # ketamine: a clinician's signed stability assessment
MON_ALERT_1 = "MON-ALERT-1"  # an alert that is already resolved cannot be resolved again
MON_READING_1 = "MON-READING-1"  # a reading_id belongs to exactly one session
MON_READING_2 = "MON-READING-2"  # a topic reading's patient/site is not its session's

CRISIS_SYMPTOMS = ("chest_pain", "severe_headache", "vision_change", "neuro_change")


# B, C, D, E: the rulebook's minimum endorsed items per cluster, as kap_shared has them.
PCL5_CLUSTER_MINIMUMS: tuple[int, int, int, int] = tuple(  # type: ignore[assignment]
    minimum for _, minimum in PCL5_CLUSTERS.values()
)


class MonitoringRules(BaseModel):
    """Configurable thresholds with the clinical rulebook's defaults."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    # -- pre-dose (rulebook 1.2, 2.4) --------------------------------------------------
    # SPR-PRE-4: "measure BP before administration, required every session" [V]: the
    # first dose needs a BP reading recorded before it. On by default for esketamine.
    predose_bp_required_agents: frozenset[Agent] = frozenset({Agent.ESKETAMINE})
    # SPR-PRE-3: a nasal corticosteroid or decongestant used that day is given at least
    # 1 h before esketamine [S]; the first dose request says whether one was used.
    nasal_medication_min_minutes_before: int = Field(default=60, ge=0)
    # SPR-PRE-7: concomitant medication classes are recorded with the first dose of
    # every esketamine session [V] (REMS Patient Monitoring Form).
    concomitant_medications_required_agents: frozenset[Agent] = frozenset({Agent.ESKETAMINE})
    # SPR-PRE-5: pre-dose BP "> 140/90" (strict) needs a documented prescriber decision.
    predose_bp_systolic_above: int = Field(default=SPR_PRE_5_SYSTOLIC_ABOVE, gt=0)
    predose_bp_diastolic_above: int = Field(default=SPR_PRE_5_DIASTOLIC_ABOVE, gt=0)

    # -- dosing (rulebook 1.3) -------------------------------------------------------------
    # MON-DOSE-2: administered_at not before check-in minus this charting tolerance [K].
    dose_charting_tolerance_minutes: int = Field(default=5, ge=0, le=240)
    # SPR-ADM-1: one device is 28 mg [V]; each device is one dose record.
    esketamine_device_mg: float = Field(default=28.0, gt=0)
    # SPR-ADM-2: rest between devices [V].
    esketamine_device_spacing_minutes: float = Field(default=5.0, ge=0)
    # SPR-ADM-3: 84 mg only after an earlier session at 56 mg [V]: the device number
    # from which an earlier session at `esketamine_titration_mg` is needed.
    esketamine_titration_device: int = Field(default=3, ge=2, le=3)
    esketamine_titration_mg: float = Field(default=56.0, gt=0)
    # KET-DIS-6 counts from the end of dosing: routes whose end may be left out take
    # this default duration [K] (an IM injection or a lozenge ends when given); the
    # others (an IV infusion) must chart `dosing_ended_at`.
    dosing_default_minutes: dict[Route, int] = Field(
        default_factory=lambda: {Route.IM: 0, Route.SUBLINGUAL: 0, Route.ORAL: 0}
    )
    # A dose is held while a critical alert of the session is open or an in-session
    # safety concern (MBC-1) is unresolved; a prescriber resolves either with a code.
    hold_doses_on_critical_alert: bool = True
    hold_doses_on_safety_concern: bool = True

    # -- intra-session BP (rulebook 2.4, 7: KET-MON-BP; 1.3: SPR-MON-6, SPR-MON-8) -----
    # KET-MON-BP: "> 180/110 on 2 readings 5 min apart" ...
    bp_critical_systolic_above: int = Field(default=180, gt=0)
    bp_critical_diastolic_above: int = Field(default=110, gt=0)
    bp_critical_pair_within_seconds: int = Field(default=300, gt=0)
    # ... "or > 200/120 once".
    bp_crisis_systolic_above: int = Field(default=200, gt=0)
    bp_crisis_diastolic_above: int = Field(default=120, gt=0)
    # KET-MON-BP recheck prompt (ObservationDue kind `bp_recheck`): a single reading
    # above the soft limit "SBP > 160 or DBP > 100 -> recheck in 5 min" (rulebook 2.4);
    # a single 185/112 therefore only asks for a recheck.
    bp_recheck_systolic_above: int = Field(default=160, gt=0)
    bp_recheck_diastolic_above: int = Field(default=100, gt=0)
    bp_recheck_after_seconds: int = Field(default=300, gt=0)
    # SPR-MON-6: "symptoms of hypertensive crisis -> immediately to emergency care".
    crisis_symptoms: tuple[str, ...] = CRISIS_SYMPTOMS

    # -- HR, SpO2, RR, sedation (rulebook 2.4, 7) ----------------------------------------
    # KET-MON-HR: "sustained HR > 120 for 5 min".
    hr_critical_above: int = Field(default=120, gt=0)
    hr_sustained_seconds: int = Field(default=300, gt=0)
    # Section 2.4 soft limit: "HR > 110 -> recheck" (ObservationDue `hr_recheck`) [S].
    hr_recheck_above: int = Field(default=110, gt=0)
    # KET-MON-HR-LOW: "HR < 50 -> escalate" [K]: critical.
    hr_critical_below: int = Field(default=50, ge=0)
    # KET-MON-SPO2: "< 92 % sustained >= 60 s, or < 90 % at any time".
    spo2_sustained_below: float = Field(default=92.0, gt=0, le=100)
    spo2_sustained_seconds: int = Field(default=60, gt=0)
    spo2_critical_below: float = Field(default=90.0, gt=0, le=100)
    # "< 75 % at any time = sentinel" [V]: the KET-MON-SPO2 alert says so.
    spo2_sentinel_below: float = Field(default=75.0, gt=0, le=100)
    # Section 2.4 soft limit: "SpO2 < 94 % -> stimulate, recheck" [K]: ObservationDue
    # `spo2_recheck` (91 % for 30 s is a recheck, not yet an alert).
    spo2_recheck_below: float = Field(default=94.0, gt=0, le=100)
    recheck_after_seconds: int = Field(default=300, gt=0)
    # KET-MON-RR: "< 8 /min -> escalate" (hard) [K].
    rr_critical_below: int = Field(default=8, ge=0)
    # KET-MON-RR-SOFT: "< 10 or > 24 /min -> recheck" (soft) [K].
    rr_soft_below: int = Field(default=10, ge=0)
    rr_soft_above: int = Field(default=24, gt=0)
    # KET-MON-SED: MOAA/S "0 (unresponsive) -> emergency".
    moaas_critical_at_or_below: int = Field(default=0, ge=0, le=5)
    # KET-MON-SED-SOFT: MOAA/S "<= 3 -> increase observation".
    moaas_soft_at_or_below: int = Field(default=3, ge=0, le=5)

    # -- SPR-MON-1: BP at ~40 min after dosing (rulebook 1.3, 7) -------------------------
    bp_check_due_minutes: int = Field(default=40, gt=0)
    bp_check_reminder_minutes: int = Field(default=35, gt=0)
    bp_check_overdue_minutes: int = Field(default=50, gt=0)
    # A BP reading within +/- this many minutes of the due time satisfies the check [K].
    bp_check_tolerance_minutes: int = Field(default=10, ge=0)

    # -- discharge (rulebook 1.4, 2.6) ----------------------------------------------------
    # SPR-MON-3: esketamine, at least 120 min from the first device administration.
    esketamine_min_observation_minutes: int = Field(default=120, ge=0)
    # KET-DIS-6: minimum observation after the end of dosing, per ketamine route
    # ("IV default 30-60 min"; 60 taken; oral/sublingual absorb slowly, 120 taken) [S].
    ketamine_min_observation_minutes: dict[Route, int] = Field(
        default_factory=lambda: {Route.IV: 60, Route.IM: 60, Route.SUBLINGUAL: 120, Route.ORAL: 120}
    )
    # KET-DIS-2: "SpO2 >= 92 % on room air".
    discharge_spo2_at_least: float = Field(default=92.0, gt=0, le=100)
    # KET-DIS-3: "BP/HR within 20 % of baseline or below the soft thresholds" [K];
    # respiratory rate within the soft range.
    discharge_bp_systolic_at_most: int = Field(default=160, gt=0)
    discharge_bp_diastolic_at_most: int = Field(default=100, gt=0)
    discharge_hr_at_most: int = Field(default=110, gt=0)
    discharge_baseline_tolerance_pct: float = Field(default=20.0, ge=0, le=100)
    # KET-DIS-3 lower limits: hypotension and bradycardia block discharge [K].
    discharge_bp_systolic_at_least: int = Field(default=90, ge=0)
    discharge_bp_diastolic_at_least: int = Field(default=50, ge=0)
    discharge_hr_at_least: int = Field(default=50, ge=0)
    discharge_rr_at_least: int = Field(default=10, ge=0)
    discharge_rr_at_most: int = Field(default=24, gt=0)
    # KET-DIS-4: "alert and oriented": MOAA/S 5 (responds readily to name).
    discharge_moaas_at_least: int = Field(default=5, ge=0, le=5)
    # Discharge fails closed: every criterion needs a reading at most this old (BP, HR,
    # SpO2, RR, MOAA/S, dissociation) [K]. For esketamine the BP is SPR-MON-1's third.
    discharge_reading_max_age_minutes: int = Field(default=30, gt=0, le=240)
    # SPR-GOAL: dissociation resolved: the latest coded assessment is `none`, and a
    # CADSS total, when given, is at most this ("CADSS > 4" in trials) [K].
    discharge_cadss_at_most: int = Field(default=4, ge=0, le=92)
    # SPR-DIS-1 / MON-DIS-3: who may sign the stability assessment (REMS: a prescriber
    # onsite) [V].
    discharge_signer_roles: frozenset[Role] = frozenset({Role.PRESCRIBER})
    # KET-DIS-1: modified Aldrete at least 9, or back to the pre-dose score [V].
    discharge_aldrete_at_least: int = Field(default=9, ge=0, le=10)
    # KET-DIS-5: ketamine needs an escort confirmed at discharge [S].
    escort_required_for_ketamine: bool = True

    # -- measurement-based care (rulebook 3.1, 3.3) --------------------------------------
    # MBC-1: "any positive answer (>= 1) needs immediate clinical evaluation".
    phq9_item9_concern_at_least: int = Field(default=MBC_1_PHQ9_ITEM9_AT_LEAST, ge=1, le=3)
    # Severity of the MBC-1 concern: critical from this answer up, warning below it.
    phq9_item9_critical_at_least: int = Field(default=MBC_1_PHQ9_ITEM9_AT_LEAST, ge=1, le=3)
    # MBC-3: response = ">= 50 % reduction from baseline"; remission = PHQ-9 "< 5".
    response_drop_pct_at_least: float = Field(default=50.0, gt=0, le=100)
    phq9_remission_below: int = Field(default=5, ge=0)
    # MBC-2: "PHQ-9 total >= 20, or a rise of >= 5 from the previous score" [K].
    mbc2_phq9_total_at_least: int = Field(default=MBC_2_PHQ9_TOTAL_AT_LEAST, ge=0, le=27)
    mbc2_phq9_rise_at_least: int = Field(default=MBC_2_PHQ9_RISE_AT_LEAST, ge=1, le=27)
    # MBC-4: "GAD-7 >= 15, or PCL-5 rise >= 10 -> notify the therapist" [V bands / MCID].
    mbc4_gad7_total_at_least: int = Field(default=MBC_4_GAD7_TOTAL_AT_LEAST, ge=0, le=21)
    mbc4_pcl5_rise_at_least: int = Field(default=MBC_4_PCL5_RISE_AT_LEAST, ge=1, le=80)
    # GAD-7 ">= 10 = refer for further evaluation" [V].
    gad7_refer_at_least: int = Field(default=GAD7_FOLLOW_UP_AT, ge=0, le=21)
    # PCL-5 provisional diagnosis [V]: an item >= 2 is endorsed; at least 1 B (items
    # 1-5), 1 C (6-7), 2 D (8-14), 2 E (15-20).
    pcl5_item_endorsed_at_least: int = Field(default=PCL5_ENDORSED_AT, ge=1, le=4)
    pcl5_cluster_minimums: tuple[int, int, int, int] = PCL5_CLUSTER_MINIMUMS

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        if not (
            self.bp_check_reminder_minutes
            < self.bp_check_due_minutes
            < self.bp_check_overdue_minutes
        ):
            raise ValueError("SPR-MON-1 needs reminder < due < overdue minutes")
        if self.rr_soft_below < self.rr_critical_below:
            raise ValueError("KET-MON-RR: the soft lower limit must not be below the hard one")
        if self.moaas_soft_at_or_below < self.moaas_critical_at_or_below:
            raise ValueError("KET-MON-SED: the soft limit must not be below the hard one")
        if not (
            self.spo2_sentinel_below
            <= self.spo2_critical_below
            <= self.spo2_sustained_below
            <= self.spo2_recheck_below
        ):
            raise ValueError("KET-MON-SPO2 needs sentinel <= critical <= sustained <= recheck")
        if self.hr_critical_below >= self.hr_recheck_above:
            raise ValueError("KET-MON-HR-LOW must be below the HR recheck limit")
        if self.discharge_bp_systolic_at_least >= self.discharge_bp_systolic_at_most:
            raise ValueError("KET-DIS-3: the systolic lower limit must be below the upper one")
        if self.discharge_hr_at_least >= self.discharge_hr_at_most:
            raise ValueError("KET-DIS-3: the heart-rate lower limit must be below the upper one")
        if not self.discharge_signer_roles:
            raise ValueError("discharge_signer_roles: at least one role must sign")
        return self

    def min_observation_minutes(self, route: Route) -> int:
        """SPR-MON-3 for esketamine, KET-DIS-6 for the ketamine routes."""
        if route is Route.INTRANASAL_ESKETAMINE:
            return self.esketamine_min_observation_minutes
        return self.ketamine_min_observation_minutes.get(route, 120)

    def mbc1_severity(self, item9: int) -> Severity | None:
        """MBC-1: the severity of a positive PHQ-9 item 9, or None."""
        if item9 < self.phq9_item9_concern_at_least:
            return None
        if item9 >= self.phq9_item9_critical_at_least:
            return Severity.CRITICAL
        return Severity.WARNING
