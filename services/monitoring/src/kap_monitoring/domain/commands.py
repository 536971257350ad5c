"""What monitoring is asked to do over HTTP. These are the request bodies, so
FastAPI's validation (422 naming the field) is the commands' own. Everything that
can travel in an event is coded (no free text: PHI rule); free-text notes stay in
monitoring's database."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Literal, Self, get_args

from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    StrictInt,
    ValidationInfo,
    field_validator,
    model_validator,
)

from kap_shared.events.enums import (
    Agent,
    ConcomitantMedicationClass,
    Dissociation,
    Instrument,
    Route,
)
from kap_shared.events.envelope import utc_now
from kap_shared.events.monitoring import READING_ID_MAX_LENGTH, VITAL_METRICS
from kap_shared.validation import ID_PATTERN, ClinicalNote, in_the_future

from .rules import CRISIS_SYMPTOMS

Symptom = Literal[
    "chest_pain",
    "severe_headache",
    "vision_change",
    "neuro_change",
    "shortness_of_breath",
    "palpitations",
    "headache",
    "nausea",
    "vomiting",
    "dizziness",
    "anxiety",
    "dissociation",
    "confusion",
]
if not set(CRISIS_SYMPTOMS) <= set(get_args(Symptom)):  # pragma: no cover - invariant
    raise RuntimeError("every SPR-MON-6 crisis symptom must be a known symptom code")


class Command(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


def _not_in_future(value: datetime | None) -> datetime | None:
    if value is not None and in_the_future(value, utc_now()):
        raise ValueError("must not be in the future")
    return value


class RecordVitals(Command):
    """One reading (the fields of VitalsRecorded); session_id is the path's."""

    # Idempotency key: a retried POST (or the same reading from a device) has no
    # second effect. Generated when absent.
    reading_id: str | None = Field(
        default=None, min_length=1, max_length=READING_ID_MAX_LENGTH, pattern=ID_PATTERN
    )
    recorded_at: AwareDatetime | None = None
    bp_systolic: int | None = Field(default=None, gt=0, lt=400)
    bp_diastolic: int | None = Field(default=None, gt=0, lt=300, validate_default=True)
    heart_rate: int | None = Field(default=None, gt=0, lt=400)
    spo2: float | None = Field(default=None, ge=0, le=100)
    respiratory_rate: int | None = Field(default=None, ge=0, lt=100)
    sedation_moaas: StrictInt | None = Field(default=None, ge=0, le=5)
    symptoms: list[Symptom] = Field(default_factory=list, max_length=20)
    # SPR-GOAL: coded dissociation/confusion assessment, optionally a CADSS total.
    dissociation: Dissociation | None = None
    cadss_total: StrictInt | None = Field(default=None, ge=0, le=92)

    _recorded_at_past = field_validator("recorded_at")(_not_in_future)

    @field_validator("bp_diastolic")
    @classmethod
    def _pair(cls, diastolic: int | None, info: ValidationInfo) -> int | None:
        if "bp_systolic" not in info.data:
            return diastolic  # bp_systolic itself is invalid and reported
        systolic = info.data["bp_systolic"]
        if (systolic is None) != (diastolic is None):
            raise ValueError("bp_systolic and bp_diastolic are measured together")
        if diastolic is not None and systolic is not None and systolic <= diastolic:
            raise ValueError("must be lower than bp_systolic")
        return diastolic

    @model_validator(mode="after")
    def _coherent(self) -> Self:
        if all(getattr(self, metric) is None for metric in VITAL_METRICS):
            raise ValueError(f"at least one of {', '.join(VITAL_METRICS)} is required")
        return self


class RecordDose(Command):
    route: Route
    agent: Agent
    dose_mg: float = Field(gt=0, le=1000)
    # Esketamine: which device of the session (1..3, 28 mg each; SPR-ADM-1).
    device_number: StrictInt | None = Field(default=None, ge=1, le=3, validate_default=True)
    # When it was given: defaults to now; may be charted late but only inside the
    # session's monitoring window (MON-DOSE-2, 409). The charting time is kept apart.
    administered_at: AwareDatetime | None = None
    # End of dosing (KET-DIS-6 counts from it): required for an infusion; routes with a
    # configured default duration may leave it out.
    dosing_ended_at: AwareDatetime | None = None
    lot_number: str | None = Field(default=None, min_length=1, max_length=64, pattern=ID_PATTERN)
    # SPR-PRE-7: classes taken (an empty list: asked, none); with the first device.
    concomitant_medications: list[ConcomitantMedicationClass] | None = Field(
        default=None, max_length=len(ConcomitantMedicationClass)
    )
    # SPR-PRE-3: with the first device: was a nasal corticosteroid/decongestant used today,
    # and when.
    nasal_medication_used: bool | None = None
    nasal_medication_at: AwareDatetime | None = None

    _nasal_past = field_validator("nasal_medication_at")(_not_in_future)

    @field_validator("agent")
    @classmethod
    def _route_matches(cls, agent: Agent, info: ValidationInfo) -> Agent:
        route = info.data.get("route")
        if route is not None and (agent is Agent.ESKETAMINE) != (
            route is Route.INTRANASAL_ESKETAMINE
        ):
            raise ValueError("esketamine goes with route intranasal_esketamine, ketamine without")
        return agent

    @field_validator("dosing_ended_at")
    @classmethod
    def _after_start(cls, ends_at: datetime | None, info: ValidationInfo) -> datetime | None:
        if ends_at is None:
            return None
        start = info.data.get("administered_at") or utc_now()
        if ends_at < start:
            raise ValueError("must not be before administered_at")
        if ends_at - start > timedelta(hours=6):
            raise ValueError("must be within 6 hours of administered_at")
        return ends_at

    @field_validator("device_number")
    @classmethod
    def _device(cls, device: int | None, info: ValidationInfo) -> int | None:
        agent = info.data.get("agent")
        if agent is Agent.ESKETAMINE and device is None:
            raise ValueError("required for esketamine (device 1..3)")
        if agent is Agent.KETAMINE and device is not None:
            raise ValueError("only for esketamine")
        return device

    @field_validator("concomitant_medications")
    @classmethod
    def _unique(
        cls, classes: list[ConcomitantMedicationClass] | None
    ) -> list[ConcomitantMedicationClass] | None:
        if classes is not None and len(set(classes)) != len(classes):
            raise ValueError("each class once")
        return classes


class AssessStability(Command):
    """A clinician's documented assessment of clinical stability before discharge
    (SPR-MON-3, SPR-DIS-1/2/3, SPR-GOAL, KET-DIS-1/4/5). Coded fields only."""

    clinically_stable: bool
    vital_signs_acceptable: bool  # SPR-DIS-2 "prior to treatment session completion"
    sedation_resolved: bool
    dissociation_resolved: bool
    respiratory_depression_resolved: bool
    alert_and_oriented: bool  # KET-DIS-4
    escort_confirmed: bool | None = None  # KET-DIS-5 (ketamine)
    aldrete_score: StrictInt | None = Field(default=None, ge=0, le=10)  # KET-DIS-1
    aldrete_pre_dose: StrictInt | None = Field(default=None, ge=0, le=10)
    # SPR-DIS-3: minutes from the first device until the patient would have been ready.
    ready_to_leave_minutes: StrictInt | None = Field(default=None, ge=0, le=600)


ConcernDecision = Literal[
    "risk_assessed_continue",
    "risk_assessed_stop_session",
    "transferred_to_emergency_care",
    "other",
]


class ResolveConcern(Command):
    """A prescriber's coded decision on an in-session safety concern (MBC-1)."""

    decision: ConcernDecision
    note: ClinicalNote = None


# Coded so that nothing free-form can leave monitoring; the prescriber's own words
# go in `note`, which stays here.
PredoseReason = Literal[
    "benefit_outweighs_risk",
    "bp_controlled_on_recheck",
    "usual_antihypertensive_taken",
    "asymptomatic_transient_elevation",
    "risk_outweighs_benefit",
    "recheck_later",
    "refer_for_bp_control",
    "other",
]


class DecidePredose(Command):
    """SPR-PRE-5: the prescriber's documented decision on an elevated pre-dose BP."""

    decision: Literal["proceed", "defer"]
    reason: PredoseReason
    note: ClinicalNote = None


ResolveReason = Literal[
    "artifact",
    "treated",
    "values_accepted_by_prescriber",
    "transferred_to_emergency_care",
    "other",
]


class ResolveAlert(Command):
    reason: ResolveReason
    note: ClinicalNote = None


class RecordMeasure(Command):
    """A PHQ-9 / GAD-7 / PCL-5 questionnaire; PHQ-9 tolerates 2 unanswered items
    (never item 9). Strict ints: `true` is not an answer."""

    instrument: Instrument
    items: list[StrictInt | None] = Field(min_length=1, max_length=20)
    session_id: str | None = Field(default=None, min_length=1, max_length=64, pattern=ID_PATTERN)
    administered_at: AwareDatetime | None = None

    _administered_past = field_validator("administered_at")(_not_in_future)
