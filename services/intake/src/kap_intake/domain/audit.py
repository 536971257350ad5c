"""The PHI access trail's vocabulary (HIPAA audit controls): what was done to
which kind of record, and how it ended. Pure: no I/O."""

from __future__ import annotations

from enum import StrEnum


class AuditAction(StrEnum):
    READ = "read"
    CREATE = "create"
    UPDATE = "update"


class AuditResource(StrEnum):
    """What the request touched (each carries PHI or is filed under the patient)."""

    PATIENT = "patient"  # the intake record: names, birth date, contacts
    FHIR_PATIENT = "fhir_patient"  # the same PHI as a FHIR R4 Patient
    DISPLAY_NAME = "display_name"  # given name and family initial (the console's floor)
    SCREENING = "screening"
    SCREENING_REVIEW = "screening_review"  # holds the prescriber's free-text note
    CONSENT = "consent"


class AuditOutcome(StrEnum):
    ALLOWED = "allowed"  # 2xx: the PHI was disclosed or written
    REFUSED = "refused"  # 401/403: no access (role, site, wildcard claim)
    NOT_FOUND = "not_found"
    REJECTED = "rejected"  # 409/422: a rule or the input stopped it; nothing stored
    FAILED = "failed"  # anything else (5xx)


def outcome_of(status: int) -> AuditOutcome:
    if 200 <= status < 300:
        return AuditOutcome.ALLOWED
    if status in (401, 403):
        return AuditOutcome.REFUSED
    if status == 404:
        return AuditOutcome.NOT_FOUND
    if status in (409, 422):
        return AuditOutcome.REJECTED
    return AuditOutcome.FAILED
