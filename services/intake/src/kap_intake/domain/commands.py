"""What intake is asked to do. These are also the HTTP request bodies, so
FastAPI's validation (422 naming the field) is the commands' own."""

from __future__ import annotations

from datetime import date
from typing import Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    EmailStr,
    Field,
    StrictInt,
    field_validator,
)

from kap_shared.events.enums import ConsentScope, ReferralSource, ReviewReason, Route
from kap_shared.validation import ID_PATTERN, ClinicalNote, ordered

from .rules import CONTRAINDICATIONS

Indication = Literal["trd", "mdd_si", "ptsd", "gad", "chronic_pain", "ocd", "bipolar_depression"]


class Command(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class Contact(Command):
    phone: str | None = Field(default=None, min_length=5, max_length=32)
    email: EmailStr | None = None


class RegisterPatient(Command):
    """A referral. Name, date of birth and contact are PHI and stay in intake."""

    given_name: str = Field(min_length=1, max_length=100)
    family_name: str = Field(min_length=1, max_length=100)
    date_of_birth: date
    contact: Contact = Field(default_factory=Contact)
    site_id: str = Field(min_length=1, max_length=64, pattern=ID_PATTERN)
    indications: list[Indication] = Field(min_length=1)
    # Coded, because it travels in PatientReferred: no free text may carry PHI.
    referral_source: ReferralSource | None = None

    @field_validator("date_of_birth")
    @classmethod
    def _plausible(cls, value: date) -> date:
        if value > date.today():
            raise ValueError("date_of_birth is in the future")
        if value.year < 1900:
            raise ValueError("date_of_birth is before 1900")
        return value


class BaselineVitals(Command):
    bp_systolic: int = Field(ge=50, le=300)
    bp_diastolic: int = Field(ge=20, le=200)
    heart_rate: int = Field(ge=20, le=250)

    _systolic_above_diastolic = ordered(
        "bp_diastolic", "bp_systolic", "bp_systolic must be greater than bp_diastolic"
    )


class ScreenPatient(Command):
    route: Route
    contraindications: list[str] = Field(default_factory=list)
    # Item answers; PHQ-9 tolerates up to 2 unanswered (null) items.
    # Strict ints: `true` is not an answer to "thoughts that you would be better off dead".
    phq9: list[StrictInt | None] = Field(min_length=9, max_length=9)
    gad7: list[StrictInt] = Field(min_length=7, max_length=7)
    pcl5: list[StrictInt] | None = Field(default=None, min_length=20, max_length=20)
    vitals: BaselineVitals

    @field_validator("contraindications")
    @classmethod
    def _known_codes(cls, codes: list[str]) -> list[str]:
        unknown = sorted(set(codes) - CONTRAINDICATIONS.keys())
        if unknown:
            raise ValueError(f"unknown contraindication codes: {', '.join(unknown)}")
        return sorted(set(codes))


class ReviewScreening(Command):
    decision: Literal["approve", "decline"]
    # Coded (kap_shared's ReviewReason) so that PatientScreened can carry it; the
    # prescriber's own words go in `note`, which stays in intake.
    reason: ReviewReason
    note: ClinicalNote = None


class RecordConsent(Command):
    scope: ConsentScope
    granted: bool
