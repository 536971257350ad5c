"""Enumerations of CONTRACT section 3."""

from enum import StrEnum


class Phase(StrEnum):
    PREPARATION = "preparation"
    DOSING = "dosing"
    INTEGRATION = "integration"


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
