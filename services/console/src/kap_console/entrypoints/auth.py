"""Sign-in and sign-out.

Development (`DEV_SIGN_IN=true` with KAP_JWT_SECRET): choose a seeded clinician;
the console mints the same HS256 token `kap-token` would. Production: OpenID
Connect authorization code + PKCE (adapters.oidc). Either way the token is kept
server-side; the browser gets only an HttpOnly, Secure, SameSite cookie.
"""

from __future__ import annotations

import time
from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, Response

from kap_shared.auth import Principal, mint_token
from kap_shared.events.enums import Role

from ..adapters.oidc import OidcClient, SignInFailed
from ..adapters.sessions import PendingLogin
from ..domain.directory import DevClinician, parse_dev_clinicians
from .web import Session, check_csrf, redirect, render, settings_of, store_of

router = APIRouter(tags=["sign-in"])


def _safe_next(path: str | None) -> str:
    # Only paths on this console: never an open redirect.
    if path and path.startswith("/") and not path.startswith("//"):
        return path
    return "/"


async def _signed_in(
    request: Request,
    token: str,
    principal: Principal,
    next_path: str,
    expires_at: float | None = None,
) -> Response:
    settings = settings_of(request)
    session_id = await store_of(request).create(token, principal, expires_at)
    response = redirect(_safe_next(next_path))
    response.set_cookie(
        settings.session_cookie_name,
        session_id,
        max_age=settings.session_ttl_seconds,
        httponly=True,
        secure=settings.session_cookie_secure,
        samesite="lax",
        path="/",
    )
    return response


@router.get("/sign-in", response_class=HTMLResponse, include_in_schema=False)
async def sign_in_page(request: Request, next: str = "/", error: str | None = None) -> Response:
    settings = settings_of(request)
    return render(
        request,
        "sign_in.html",
        None,
        next=_safe_next(next),
        error=error,
        dev=settings.dev_sign_in,
        clinicians=parse_dev_clinicians(settings.dev_clinicians) if settings.dev_sign_in else [],
        roles=[r.value for r in Role if r is not Role.DEVICE],
        oidc=bool(request.app.state.oidc),
    )


@router.post("/sign-in/dev", include_in_schema=False)
async def sign_in_dev(
    request: Request,
    clinician_id: Annotated[str, Form()] = "",
    other_id: Annotated[str, Form()] = "",
    other_role: Annotated[str, Form()] = "",
    other_sites: Annotated[str, Form()] = "",
    use: Annotated[str, Form()] = "seeded",
    next: Annotated[str, Form()] = "/",
) -> Response:
    settings = settings_of(request)
    known = {c.clinician_id: c for c in parse_dev_clinicians(settings.dev_clinicians)}
    if (
        use == "other"
        and other_id.strip()
        and other_role in {r.value for r in Role}
        and other_sites.strip()
    ):
        # Development only, like `kap-token`: any clinician the dev secret could mint.
        sites = tuple(s.strip() for s in other_sites.split(",") if s.strip())
        known[other_id.strip()] = DevClinician(other_id.strip(), Role(other_role), sites)
        clinician_id = other_id.strip()
    secret = settings.kap_jwt_secret
    if not settings.dev_sign_in or secret is None or clinician_id not in known:
        return render(
            request,
            "sign_in.html",
            None,
            403,
            next="/",
            dev=False,
            clinicians=[],
            oidc=bool(request.app.state.oidc),
            error="development sign-in is off",
        )
    chosen = known[clinician_id]
    token = mint_token(
        secret.get_secret_value(),
        sub=chosen.clinician_id,
        role=chosen.role,
        sites=list(chosen.sites),
    )
    principal = Principal(sub=chosen.clinician_id, role=chosen.role, sites=list(chosen.sites))
    return await _signed_in(request, token, principal, next)


@router.get("/sign-in/oidc", include_in_schema=False)
async def sign_in_oidc(request: Request, next: str = "/") -> Response:
    oidc: OidcClient | None = request.app.state.oidc
    if oidc is None:
        return redirect("/sign-in?error=single+sign-on+is+not+configured")
    try:
        auth = await oidc.authorization_request()
    except SignInFailed as exc:
        return redirect(f"/sign-in?error={exc}")
    await store_of(request).remember_login(
        auth.state,
        PendingLogin(auth.code_verifier, auth.nonce, _safe_next(next), time.time() + 600),
    )
    return redirect(auth.url)


@router.get("/auth/callback", include_in_schema=False)
async def oidc_callback(
    request: Request, state: str = "", code: str = "", error: str | None = None
) -> Response:
    oidc: OidcClient | None = request.app.state.oidc
    pending = await store_of(request).take_login(state) if state else None
    if oidc is None or pending is None or error or not code:
        return render(
            request,
            "sign_in.html",
            None,
            400,
            next="/",
            dev=False,
            clinicians=[],
            oidc=oidc is not None,
            error=error or "the sign-in request expired or was not started here",
        )
    try:
        tokens = await oidc.exchange(code, pending.code_verifier, pending.nonce)
    except SignInFailed as exc:
        return render(
            request,
            "sign_in.html",
            None,
            401,
            next="/",
            dev=False,
            clinicians=[],
            oidc=True,
            error=str(exc),
        )
    return await _signed_in(
        request, tokens.access_token, tokens.principal, pending.next_path, tokens.expires_at
    )


@router.post("/sign-out", include_in_schema=False)
async def sign_out(request: Request, sign_in: Session) -> Response:
    await check_csrf(request, sign_in)
    settings = settings_of(request)
    await store_of(request).drop(request.cookies.get(settings.session_cookie_name))
    response = redirect("/sign-in")
    response.delete_cookie(settings.session_cookie_name, path="/")
    return response
