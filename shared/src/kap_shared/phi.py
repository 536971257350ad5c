"""The PHI vocabulary: the field names that carry protected health information, once.

Intake is the only service that stores PHI (names, birth dates, contacts, free text). Its
table columns holding PHI are named from `PHI_COLUMNS` and declared with `phi_column()`,
which marks them in the table metadata (`column.info["phi"]`); intake's tests check that
the marked columns and this set agree. The log redaction (`kap_shared.logging.drop_phi`)
redacts `PHI_KEYS`: these columns plus the other names PHI goes by in requests and code.
"""

from __future__ import annotations

from typing import Any

from sqlmodel import Field

# intake: patients.given_name/family_name/date_of_birth/phone/email; screenings.review_note.
PHI_COLUMNS = frozenset(
    {"given_name", "family_name", "date_of_birth", "phone", "email", "review_note"}
)
# The same facts under other names: request bodies (`contact`, `note`), FHIR and habit.
PHI_ALIASES = frozenset(
    {"name", "full_name", "first_name", "last_name", "dob", "address", "contact", "note", "notes"}
)
PHI_KEYS = PHI_COLUMNS | PHI_ALIASES

PHI_INFO_KEY = "phi"


def phi_column(**field: Any) -> Any:
    """A SQLModel field that holds PHI: marked in the column's `info`, so tests (and
    anything exporting the schema) can tell it from the rest."""
    return Field(sa_column_kwargs={"info": {PHI_INFO_KEY: True}}, **field)
