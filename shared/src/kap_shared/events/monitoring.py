"""Events on `kap.monitoring.vitals.v1` (device gateways, monitoring's ingest)
and `kap.monitoring.events.v1` (monitoring)."""

from __future__ import annotations

from typing import ClassVar, Literal, Self

from pydantic import AwareDatetime, Field, model_validator

from .enums import Agent, ConcomitantMedicationClass, Dissociation, Instrument, Route, Severity
from .envelope import Envelope, Payload
from .topics import MONITORING_EVENTS, MONITORING_VITALS

VITAL_METRICS = (
    "bp_systolic",
    "bp_diastolic",
    "heart_rate",
    "spo2",
    "respiratory_rate",
    "sedation_moaas",
)


class VitalsReading(Payload):
    """The measured values of one reading; at least one metric is required."""

    bp_systolic: int | None = Field(default=None, gt=0, lt=400)
    bp_diastolic: int | None = Field(default=None, gt=0, lt=300)
    heart_rate: int | None = Field(default=None, gt=0, lt=400)
    spo2: float | None = Field(default=None, ge=0, le=100)
    respiratory_rate: int | None = Field(default=None, ge=0, lt=100)
    sedation_moaas: int | None = Field(default=None, ge=0, le=5)
    symptoms: list[str] = Field(default_factory=list)
    # Optional assessments (additive): dissociation/confusion, coded, optionally a CADSS total.
    dissociation: Dissociation | None = None
    cadss_total: int | None = Field(default=None, ge=0, le=92)

    @model_validator(mode="after")
    def _at_least_one_metric(self) -> Self:
        if all(getattr(self, metric) is None for metric in VITAL_METRICS):
            raise ValueError(f"at least one of {', '.join(VITAL_METRICS)} is required")
        return self


# The longest reading_id a service stores (monitoring's POST accepts no longer one). The
# contract leaves it open; the services' columns are this long, so both keep the same ids.
READING_ID_MAX_LENGTH = 100


class VitalsRecordedData(VitalsReading):
    session_id: str
    reading_id: str
    recorded_at: AwareDatetime


class DoseAdministeredData(Payload):
    session_id: str
    administered_at: AwareDatetime
    route: Route
    agent: Agent
    dose_mg: float = Field(gt=0)
    device_number: int | None = Field(default=None, ge=1, le=3)
    lot_number: str | None = Field(default=None, max_length=64)  # CONTRACT 6.2, for the REMS PMF
    # Optional (additive): when it was charted (administered_at may be earlier, never later),
    # the end of an infusion/injection (KET-DIS-6 counts from it), and SPR-PRE-7's classes
    # taken that day (an empty list: asked, none taken; absent: not recorded).
    charted_at: AwareDatetime | None = None
    dosing_ended_at: AwareDatetime | None = None
    concomitant_medications: list[ConcomitantMedicationClass] | None = None


class VitalsAlertData(Payload):
    alert_id: str
    session_id: str
    severity: Severity
    rule_id: str
    metric: str
    value: float
    threshold: float
    message: str


class VitalsAlertResolvedData(Payload):
    alert_id: str
    session_id: str
    resolved_at: AwareDatetime


class ObservationDueData(Payload):
    session_id: str
    kind: str  # ObservationKind
    due_at: AwareDatetime
    # The rule asking for the observation (SPR-MON-1, KET-MON-BP, ...); optional (CONTRACT
    # section 6: added later, so older producers leave it out).
    rule_id: str | None = None


class DischargeClearedData(Payload):
    session_id: str
    first_dose_at: AwareDatetime
    cleared_at: AwareDatetime
    observed_minutes: float = Field(ge=0)
    signed_by: str | None = None  # CONTRACT 6.2: the clinician whose assessment signed it


class OutcomeRecordedData(Payload):
    instrument: Instrument
    total: float = Field(ge=0)
    band: str
    baseline_total: float | None = None
    change_pct: float | None = None
    response: bool
    remission: bool
    # Optional (additive): rule ids of the measurement-based follow-ups this outcome asks
    # for (MBC-2, MBC-4, MBC-GAD7-REFER, MBC-PCL5-PROVISIONAL); [] = none; absent = not
    # evaluated. Safety concerns (MBC-1) stay SafetyConcernRaised.
    follow_up: list[str] | None = None


class SafetyConcernRaisedData(Payload):
    source: str
    value: float
    severity: Severity
    rule_id: str | None = None  # CONTRACT 6.2, e.g. MBC-1


class VitalsRecorded(Envelope):
    topic: ClassVar[str] = MONITORING_VITALS
    event_type: Literal["VitalsRecorded"] = "VitalsRecorded"
    data: VitalsRecordedData


class DoseAdministered(Envelope):
    topic: ClassVar[str] = MONITORING_EVENTS
    event_type: Literal["DoseAdministered"] = "DoseAdministered"
    data: DoseAdministeredData


class VitalsAlert(Envelope):
    topic: ClassVar[str] = MONITORING_EVENTS
    event_type: Literal["VitalsAlert"] = "VitalsAlert"
    data: VitalsAlertData


class VitalsAlertResolved(Envelope):
    topic: ClassVar[str] = MONITORING_EVENTS
    event_type: Literal["VitalsAlertResolved"] = "VitalsAlertResolved"
    data: VitalsAlertResolvedData


class ObservationDue(Envelope):
    topic: ClassVar[str] = MONITORING_EVENTS
    event_type: Literal["ObservationDue"] = "ObservationDue"
    data: ObservationDueData


class DischargeCleared(Envelope):
    topic: ClassVar[str] = MONITORING_EVENTS
    event_type: Literal["DischargeCleared"] = "DischargeCleared"
    data: DischargeClearedData


class OutcomeRecorded(Envelope):
    topic: ClassVar[str] = MONITORING_EVENTS
    event_type: Literal["OutcomeRecorded"] = "OutcomeRecorded"
    data: OutcomeRecordedData


class SafetyConcernRaised(Envelope):
    topic: ClassVar[str] = MONITORING_EVENTS
    event_type: Literal["SafetyConcernRaised"] = "SafetyConcernRaised"
    data: SafetyConcernRaisedData
