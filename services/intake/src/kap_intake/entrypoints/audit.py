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


class BatchAuditEntry:
    """A request about several patients: one record per patient, each with the
    patient's site and its own outcome (a name disclosed, an id not found); when the
    request itself is refused, every patient's record carries the refusal."""

    def __init__(self, patient_ids: list[str]) -> None:
        self.patient_ids = list(dict.fromkeys(patient_ids))
        self.sites: dict[str, str] = {}
        self.statuses: dict[str, int] = {}

    def about(self, patient_id: str, site_id: str) -> None:
        self.sites[patient_id] = site_id

    def answered(self, patient_id: str, status: int) -> None:
        self.statuses[patient_id] = status


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


def audited_batch(
    action: AuditAction, resource: AuditResource, *, ids_param: str = "ids", limit: int = 200
) -> Any:
    """`entry: Annotated[BatchAuditEntry, audited_batch(READ, DISPLAY_NAME)]`: the
    patients are the query parameter `ids_param` (repeated). More than `limit` ids is
    refused (422) with a single record that names no patient."""

    async def dependency(request: Request) -> AsyncIterator[BatchAuditEntry]:
        ids = request.query_params.getlist(ids_param)
        entry = BatchAuditEntry(ids if len(ids) <= limit else [])
        try:
            yield entry
        except Exception as exc:
            await _record_batch(request, action, resource, entry, _status_of(exc), failed=True)
            raise
        await _record_batch(request, action, resource, entry, 200, failed=False)

    return Depends(dependency, scope="function")


async def _record_batch(
    request: Request,
    action: AuditAction,
    resource: AuditResource,
    batch: BatchAuditEntry,
    status: int,
    *,
    failed: bool,
) -> None:
    if not batch.patient_ids:
        await _record(request, action, resource, AuditEntry(None), status)
        return
    records = []
    for patient_id in batch.patient_ids:
        entry = AuditEntry(patient_id)
        entry.site_id = batch.sites.get(patient_id)
        # A refused request disclosed nothing: each record carries its status.
        records.append((entry, status if failed else batch.statuses.get(patient_id, status)))
    await _record_many(request, action, resource, records)


async def _record(
    request: Request,
    action: AuditAction,
    resource: AuditResource,
    entry: AuditEntry,
    status: int,
) -> None:
    await _record_many(request, action, resource, [(entry, status)])


async def _record_many(
    request: Request,
    action: AuditAction,
    resource: AuditResource,
    entries: list[tuple[AuditEntry, int]],
) -> None:
    principal: Principal | None = getattr(request.state, "principal", None)
    if principal is None:
        return  # 401: nobody to name
    runtime: ServiceRuntime = request.app.state.runtime
    trace_id = trace_id_of(current_traceparent())
    await audit.append(
        runtime.sessions,
        *(
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
                trace_id=trace_id,
                request_id=request.headers.get("x-request-id"),
            )
            for entry, status in entries
        ),
    )
