"""Events intake publishes on `kap.intake.events.v1`."""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import Field

from .enums import ConsentScope, ContraindicationClass, Route, ScreeningOutcome
from .envelope import Envelope, Payload
from .topics import INTAKE_EVENTS


class Contraindication(Payload):
    code: str = Field(min_length=1)
    class_: ContraindicationClass = Field(alias="class")

    model_config = Payload.model_config | {"populate_by_name": True, "serialize_by_alias": True}


class Baseline(Payload):
    phq9_total: int = Field(ge=0, le=27)
    phq9_item9: int = Field(ge=0, le=3)
    gad7_total: int = Field(ge=0, le=21)
    pcl5_total: int | None = Field(default=None, ge=0, le=80)
    bp_systolic: int = Field(gt=0, lt=400)
    bp_diastolic: int = Field(gt=0, lt=300)
    heart_rate: int = Field(gt=0, lt=400)


class PatientReferredData(Payload):
    indications: list[str] = Field(min_length=1)
    referral_source: str | None = None


class PatientScreenedData(Payload):
    screening_id: str
    outcome: ScreeningOutcome
    route: Route
    indications: list[str]
    contraindications: list[Contraindication] = Field(default_factory=list)
    reasons: list[str] = Field(default_factory=list)
    baseline: Baseline
    reviewed_by: str | None = None
    review_reason: str | None = None


class ConsentRecordedData(Payload):
    consent_id: str
    scope: ConsentScope
    granted: bool


class PatientReferred(Envelope):
    topic: ClassVar[str] = INTAKE_EVENTS
    event_type: Literal["PatientReferred"] = "PatientReferred"
    data: PatientReferredData


class PatientScreened(Envelope):
    topic: ClassVar[str] = INTAKE_EVENTS
    event_type: Literal["PatientScreened"] = "PatientScreened"
    data: PatientScreenedData


class ConsentRecorded(Envelope):
    topic: ClassVar[str] = INTAKE_EVENTS
    event_type: Literal["ConsentRecorded"] = "ConsentRecorded"
    data: ConsentRecordedData
