"""Request bodies of records' HTTP API (responses are documented in the README)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

# REMS identifiers are codes (letters, digits, dashes), never free text.
REMS_ID = r"^[A-Za-z0-9][A-Za-z0-9-]{0,31}$"


class PmfCompletion(BaseModel):
    """The PMF fields no event carries (SPR-PMF-1); only the fields sent change.
    An unknown field is refused with 422 naming it."""

    model_config = ConfigDict(extra="forbid")

    patient_rems_id: str | None = Field(default=None, pattern=REMS_ID)
    setting_rems_id: str | None = Field(default=None, pattern=REMS_ID)
    vitals_acceptable_pre_dose: bool | None = None
    vitals_acceptable_pre_completion: bool | None = None
    ready_to_leave_minutes: int | None = Field(default=None, ge=0, le=720)


class PmfSubmission(BaseModel):
    model_config = ConfigDict(extra="forbid")

    # The REMS confirmation number (portal or fax), a code.
    confirmation: str | None = Field(default=None, pattern=r"^[A-Za-z0-9][A-Za-z0-9-]{0,63}$")
