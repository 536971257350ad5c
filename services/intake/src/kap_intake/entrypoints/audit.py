"""Every PHI request leaves a record: a route declares `audited(...)` and
the record is written when the request ends, whatever the outcome (HIPAA audit
controls). The dependency is function-scoped, so the record is committed before the
response leaves: no record, no disclosure.

The actor comes from the verified token (`current_principal` keeps it on the
request), so a console that calls intake with a clinician's token is audited as that
clinician. 401 is not recorded: there is no actor to name (it is counted in the HTTP
metrics).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from fastapi import Depends, HTTPException, Request
from fastapi.exceptions import RequestValidationError

from kap_shared.auth import Principal
from kap_shared.http.errors import ApiError
from kap_shared.service.runtime import ServiceRuntime
from kap_shared.tracing import current_traceparent, trace_id_of

from ..adapters.tables import AuditRecord
from ..domain.audit import AuditAction, AuditResource, outcome_of
from ..handlers import audit


class AuditEntry:
    """What the route learns while it runs (the patient and site, once known)."""

    def __init__(self, patient_id: str | None) -> None:
        self.patient_id = patient_id
        self.site_id: str | None = None

    def about(self, patient_id: str, site_id: str) -> None:
        self.patient_id, self.site_id = patient_id, site_id


def _status_of(exc: BaseException) -> int:
    if isinstance(exc, ApiError):
        return exc.status
    if isinstance(exc, HTTPException):
        return exc.status_code
    if isinstance(exc, RequestValidationError):
        return 422
    return 500


def audited(action: AuditAction, resource: AuditResource, *, success: int = 200) -> Any:
    """`entry: Annotated[AuditEntry, audited(READ, PATIENT)]`, the route's first
    parameter, so refusals by the auth dependencies after it are recorded too."""

    async def dependency(request: Request) -> AsyncIterator[AuditEntry]:
        entry = AuditEntry(request.path_params.get("patient_id"))
        try:
            yield entry
        except Exception as exc:
            await _record(request, action, resource, entry, _status_of(exc))
            raise
        await _record(request, action, resource, entry, success)

    # Function scope: the record is committed before the response is sent.
    return Depends(dependency, scope="function")


async def _record(
    request: Request,
    action: AuditAction,
    resource: AuditResource,
    entry: AuditEntry,
    status: int,
) -> None:
    principal: Principal | None = getattr(request.state, "principal", None)
    if principal is None:
        return  # 401: nobody to name
    runtime: ServiceRuntime = request.app.state.runtime
    await audit.append(
        runtime.sessions,
        AuditRecord(
            actor=principal.sub,
            role=principal.role,
            actor_sites=list(principal.sites),
            site_id=entry.site_id,
            patient_id=entry.patient_id,
            action=action,
            resource=resource,
            method=request.method,
            path=request.url.path,
            status=status,
            outcome=outcome_of(status),
            trace_id=trace_id_of(current_traceparent()),
            request_id=request.headers.get("x-request-id"),
        ),
    )
