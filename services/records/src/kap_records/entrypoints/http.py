"""HTTP API (CONTRACT 6.3). Thin: authorize, translate, call a use case.

Who may do what (any other role: 403; a patient or form of a site not in the token: 403):

| endpoint | roles |
|---|---|
| `GET /patients/{id}/timeline`, `GET /fhir/Patient/{id}/$everything` | prescriber, therapist, nurse, coordinator, admin |
| `GET /pmf`, `GET /pmf/{id}`, `GET /pmf/{id}/print` | prescriber, nurse, coordinator, admin |
| `PATCH /pmf/{id}`, `POST /pmf/{id}/submit` | prescriber, nurse, coordinator |
"""  # noqa: E501 - a table

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response

from kap_shared.auth import Principal, ensure_site, require_roles
from kap_shared.events.enums import Role
from kap_shared.events.envelope import utc_now
from kap_shared.fhir import FhirResponse
from kap_shared.http.dependencies import Uow
from kap_shared.http.errors import InvalidField
from kap_shared.http.openapi import error_responses
from kap_shared.messaging.unit_of_work import UnitOfWork
from kap_shared.rules import SiteRules

from ..adapters import repository as repo
from ..adapters.tables import PmfForm
from ..domain.pmf import PmfStatus
from ..domain.rules import RecordsRules
from ..handlers import fhir, pmf, views
from .printable import render
from .schemas import PmfCompletion, PmfSubmission

router = APIRouter()

P, T, N, C, A = Role.PRESCRIBER, Role.THERAPIST, Role.NURSE, Role.COORDINATOR, Role.ADMIN
Viewer = Annotated[Principal, Depends(require_roles(P, T, N, C, A))]
FormReader = Annotated[Principal, Depends(require_roles(P, N, C, A))]
FormEditor = Annotated[Principal, Depends(require_roles(P, N, C))]


def _rules(request: Request) -> SiteRules[RecordsRules]:
    rules: SiteRules[RecordsRules] = request.app.state.rules
    return rules


Rules = Annotated[SiteRules[RecordsRules], Depends(_rules)]

# 401, 403, 422 and 503 come with the app (kap_shared.http.openapi); all with ErrorResponse.
ERRORS = error_responses(404)
WRITE_ERRORS = error_responses(404, 409)
WRITE_ERRORS[409]["description"] = (
    "`SPR-PMF-1`: the form is incomplete (`details.missing_fields`); "
    "`PMF-STATE-1`: the form was already submitted"
)


async def _patient_sites(uow: UnitOfWork, principal: Principal, patient_id: str) -> None:
    for site_id in sorted(await views.patient_sites(uow.session, patient_id)):
        ensure_site(principal, site_id)


@router.get("/patients/{patient_id}/timeline", tags=["timeline"], responses=ERRORS)
async def timeline(
    patient_id: str,
    principal: Viewer,
    uow: Uow,
    phase: Annotated[
        list[str] | None, Query(description="preparation, dosing, integration")
    ] = None,
    types: Annotated[
        list[str] | None, Query(description="event types (repeat or comma-separate)")
    ] = None,
    since: datetime | None = None,
    until: datetime | None = None,
    offset: Annotated[int, Query(ge=0)] = 0,
    limit: Annotated[int, Query(ge=1, le=1000)] = 200,
) -> dict[str, Any]:
    """The patient's events across every topic, in time order (README "Timeline JSON")."""
    for name, value in (("since", since), ("until", until)):
        if value is not None and value.tzinfo is None:
            raise InvalidField(name, "needs a time zone (e.g. Z)")
    phases = {p for item in phase or [] for p in item.split(",") if p}
    unknown = phases - {"preparation", "dosing", "integration"}
    if unknown:
        raise InvalidField("phase", f"unknown phase {sorted(unknown)[0]}")
    query = views.TimelineQuery(
        phases=frozenset(phases),
        types=frozenset(t for item in types or [] for t in item.split(",") if t),
        since=since,
        until=until,
        offset=offset,
        limit=limit,
    )
    async with uow:
        await _patient_sites(uow, principal, patient_id)
        return await views.timeline(uow.session, patient_id, query)


@router.get(
    "/fhir/Patient/{patient_id}/$everything",
    tags=["fhir"],
    responses=ERRORS,
    response_class=FhirResponse,
)
async def everything(patient_id: str, principal: Viewer, uow: Uow) -> FhirResponse:
    """FHIR R4 Bundle (type collection) of the patient's care record."""
    async with uow:
        await _patient_sites(uow, principal, patient_id)
        bundle = await fhir.everything(uow.session, patient_id)
    return FhirResponse(bundle)


# -- REMS Patient Monitoring Form (SPR-PMF-1) --------------------------------------------------


@router.get("/pmf", tags=["pmf"], responses=ERRORS)
async def worklist(
    principal: FormReader,
    uow: Uow,
    rules: Rules,
    site_id: str | None = None,
    status: PmfStatus | None = None,
    due_before: datetime | None = None,
) -> dict[str, Any]:
    """The coordinator's worklist: forms by due date (README "PMF JSON", each in full)."""
    if site_id is not None:
        ensure_site(principal, site_id)
    if due_before is not None and due_before.tzinfo is None:
        raise InvalidField("due_before", "needs a time zone (e.g. Z)")
    sites = [site_id] if site_id else (None if "*" in principal.sites else principal.sites)
    async with uow:
        forms = [
            await pmf.view_of(uow.session, form, rules.for_site(form.site_id))
            for form in await repo.pmfs(uow.session, site_ids=sites, due_before=due_before)
        ]
    if status is not None:
        forms = [f for f in forms if f["status"] == status.value]
    return {"forms": forms}


async def _form(uow: UnitOfWork, principal: Principal, pmf_id: str) -> PmfForm:
    form = await pmf.load(uow.session, pmf_id)
    ensure_site(principal, form.site_id)
    return form


@router.get(
    "/pmf/{pmf_id}",
    tags=["pmf"],
    responses={**ERRORS, 200: {"content": {"text/html": {}}}},
)
async def get_form(
    pmf_id: str, request: Request, principal: FormReader, uow: Uow, rules: Rules
) -> Response:
    """The form as JSON, or its printable rendering with `Accept: text/html`."""
    async with uow:
        form = await _form(uow, principal, pmf_id)
        view = await pmf.view_of(uow.session, form, rules.for_site(form.site_id))
    accept = request.headers.get("accept", "")
    if "text/html" in accept and "application/json" not in accept:
        return HTMLResponse(render(view))
    return JSONResponse(view)


@router.get("/pmf/{pmf_id}/print", tags=["pmf"], responses=ERRORS, response_class=HTMLResponse)
async def print_form(pmf_id: str, principal: FormReader, uow: Uow, rules: Rules) -> HTMLResponse:
    """The printable rendering (HTML, the REMS form's sections)."""
    async with uow:
        form = await _form(uow, principal, pmf_id)
        view = await pmf.view_of(uow.session, form, rules.for_site(form.site_id))
    return HTMLResponse(render(view))


@router.patch("/pmf/{pmf_id}", tags=["pmf"], responses=WRITE_ERRORS)
async def complete_form(
    pmf_id: str, body: PmfCompletion, principal: FormEditor, uow: Uow, rules: Rules
) -> dict[str, Any]:
    """Complete the fields no event carries (coded values only); returns the form."""
    values = body.model_dump(exclude_unset=True)
    for name, value in values.items():
        if value is None:
            raise InvalidField(name, "may not be null")
    async with uow:
        form = await _form(uow, principal, pmf_id)
        return await pmf.complete(uow, form, values, rules.for_site(form.site_id))


@router.post("/pmf/{pmf_id}/submit", tags=["pmf"], responses=WRITE_ERRORS)
async def submit_form(
    pmf_id: str, principal: FormEditor, uow: Uow, rules: Rules, body: PmfSubmission | None = None
) -> dict[str, Any]:
    """Record the form's submission to the REMS (who, confirmation); cancels its
    reminders and publishes PmfSubmitted. 409 `SPR-PMF-1` while fields are missing."""
    async with uow:
        form = await _form(uow, principal, pmf_id)
        return await pmf.submit(
            uow,
            form,
            by=principal.sub,
            confirmation=body.confirmation if body else None,
            now=utc_now(),
            rules=rules.for_site(form.site_id),
        )
