"""Enumerations of CONTRACT section 3."""

from enum import StrEnum


class Phase(StrEnum):
    PREPARATION = "preparation"
    DOSING = "dosing"
    INTEGRATION = "integration"


class SessionStatus(StrEnum):
    """A dosing or therapy session as scheduling keeps it (its GET and its events)."""

    SCHEDULED = "scheduled"
    CHECKED_IN = "checked_in"
    COMPLETED = "completed"
    CANCELLED = "cancelled"


class Route(StrEnum):
    IV = "iv"
    IM = "im"
    INTRANASAL_ESKETAMINE = "intranasal_esketamine"
    SUBLINGUAL = "sublingual"
    ORAL = "oral"


class Severity(StrEnum):
    INFO = "info"
    WARNING = "warning"
    CRITICAL = "critical"


class Role(StrEnum):
    PRESCRIBER = "prescriber"
    THERAPIST = "therapist"
    NURSE = "nurse"
    COORDINATOR = "coordinator"
    ADMIN = "admin"
    DEVICE = "device"


class ScreeningOutcome(StrEnum):
    ELIGIBLE = "eligible"
    INELIGIBLE = "ineligible"
    NEEDS_REVIEW = "needs_review"


class ContraindicationClass(StrEnum):
    ABSOLUTE = "absolute"
    RELATIVE = "relative"


class ConsentScope(StrEnum):
    TREATMENT = "treatment"
    REMS_ENROLLMENT = "rems_enrollment"
    DATA_SHARING = "data_sharing"


class Agent(StrEnum):
    KETAMINE = "ketamine"
    ESKETAMINE = "esketamine"


class Instrument(StrEnum):
    PHQ9 = "PHQ-9"
    GAD7 = "GAD-7"
    PCL5 = "PCL-5"


class Channel(StrEnum):
    EMAIL = "email"
    SMS = "sms"
    IN_APP = "in_app"


class ConcomitantMedicationClass(StrEnum):
    """SPR-PRE-7: sedating or BP-changing classes asked about at each esketamine session
    (REMS Patient Monitoring Form; opioids added by the current form)."""

    BENZODIAZEPINE = "benzodiazepine"
    NON_BENZODIAZEPINE_SEDATIVE_HYPNOTIC = "non_benzodiazepine_sedative_hypnotic"
    PSYCHOSTIMULANT = "psychostimulant"
    MAOI = "maoi"
    OPIOID = "opioid"


class Dissociation(StrEnum):
    """A coded dissociation/confusion assessment (SPR-GOAL); `none` means resolved."""

    NONE = "none"
    MILD = "mild"
    MODERATE = "moderate"
    SEVERE = "severe"


# -- coded vocabularies carried in events as plain strings ---------------------------------
# The event fields stay `str` (tolerant readers: a consumer must not reject a code a newer
# producer added); producers validate their input against these enums, so the codes live
# once, here. Coded rather than free text because no free text (and so no PHI) may travel.


class ReferralSource(StrEnum):
    """PatientReferred.referral_source."""

    PRIMARY_CARE = "primary_care"
    PSYCHIATRIST = "psychiatrist"
    PSYCHOLOGIST = "psychologist"
    THERAPIST = "therapist"
    SELF = "self"
    HOSPITAL = "hospital"
    OTHER = "other"


class ReviewReason(StrEnum):
    """PatientScreened.review_reason: why a prescriber approved or declined a screening
    that needed review (their own words stay in intake's note)."""

    BENEFIT_OUTWEIGHS_RISK = "benefit_outweighs_risk"
    RISK_MITIGATED = "risk_mitigated"
    BP_CONTROLLED_ON_RECHECK = "bp_controlled_on_recheck"
    RISK_OUTWEIGHS_BENEFIT = "risk_outweighs_benefit"
    NEEDS_SPECIALIST_CLEARANCE = "needs_specialist_clearance"
    PATIENT_DECLINED = "patient_declined"
    OTHER = "other"


class CancelReason(StrEnum):
    """SessionCancelled.reason. `plan_suspended` is scheduling's own (an ineligible
    screening suspends the plan); clients cannot send it."""

    PATIENT_REQUEST = "patient_request"
    PATIENT_UNWELL = "patient_unwell"
    PATIENT_NO_SHOW = "patient_no_show"
    CLINICIAN_UNAVAILABLE = "clinician_unavailable"
    ROOM_UNAVAILABLE = "room_unavailable"
    SAFETY_HOLD = "safety_hold"
    CLINICAL_DECISION = "clinical_decision"
    REBOOKED = "rebooked"
    OTHER = "other"
    PLAN_SUSPENDED = "plan_suspended"


class ObservationKind(StrEnum):
    """ObservationDue.kind: SPR-MON-1's 40-minute BP check, due and overdue, and the
    rulebook's section 2.4 soft-limit rechecks (KET-MON-BP, KET-MON-HR, KET-MON-SPO2)."""

    BP_CHECK_40MIN = "bp_check_40min"
    BP_CHECK_40MIN_OVERDUE = "bp_check_40min_overdue"
    BP_RECHECK = "bp_recheck"
    HR_RECHECK = "hr_recheck"
    SPO2_RECHECK = "spo2_recheck"


class MeasureFollowUp(StrEnum):
    """OutcomeRecorded.follow_up: the measurement-based follow-ups monitoring decided
    (rulebook 3.1, 3.3); consumers route on these rather than recompute them."""

    MBC_2 = "MBC-2"  # PHQ-9 worsening: the care team hears at once
    MBC_4 = "MBC-4"  # GAD-7 / PCL-5 worsening: the therapist reviews
    MBC_GAD7_REFER = "MBC-GAD7-REFER"  # GAD-7 >= 10: refer for further evaluation
    MBC_PCL5_PROVISIONAL = "MBC-PCL5-PROVISIONAL"  # PCL-5 provisional DSM-5 PTSD


class ClearedBy(StrEnum):
    """What clears a safety gate's blocker (monitoring's 409 details and session view,
    `cleared_by`): the console enables "Sign discharge" only when every blocker says
    `signature`, instead of keeping its own copy of which rules the signature clears."""

    SIGNATURE = "signature"  # a signed stability assessment (SPR-DIS-1 / MON-DIS-3)
    READING = "reading"  # a new recorded reading or assessment (vitals, dissociation)
    TIME = "time"  # observation time still has to pass
    ALERT_DECISION = "alert_decision"  # values back in range or a prescriber resolves
    DOSE = "dose"  # a dose has to be recorded first
