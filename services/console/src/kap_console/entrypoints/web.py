"""What every page route shares: templates, the signed-in clinician, CSRF, errors."""

from __future__ import annotations

import secrets
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any

from fastapi import Depends, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates

from kap_shared.auth import Principal
from kap_shared.events.enums import ConcomitantMedicationClass, Dissociation
from kap_shared.events.envelope import utc_now

from ..adapters.live import LiveHub
from ..adapters.services import ServiceApi, Services
from ..adapters.sessions import SessionStore, SignIn
from ..config import ConsoleSettings
from ..handlers.actions import ASSESSMENT_ANSWERS

TEMPLATES = Jinja2Templates(directory=str(Path(__file__).resolve().parents[1] / "templates"))


def _minutes_until(when: datetime | None, now: datetime) -> str:
    if when is None:
        return ""
    seconds = int((when - now).total_seconds())
    if seconds <= 0:
        return "now"
    return f"{seconds // 60} min {seconds % 60:02d} s"


TEMPLATES.env.filters["until"] = _minutes_until
TEMPLATES.env.filters["hm"] = lambda d: d.strftime("%H:%M") if d else ""
TEMPLATES.env.filters["iso"] = lambda d: d.isoformat() if d else ""
# The coded vocabularies the forms offer (the services validate them).
TEMPLATES.env.globals["ASSESSMENT_ANSWERS"] = ASSESSMENT_ANSWERS
TEMPLATES.env.globals["MEDICATION_CLASSES"] = [c.value for c in ConcomitantMedicationClass]
TEMPLATES.env.globals["DISSOCIATION"] = [d.value for d in Dissociation]


class NotSignedIn(Exception):
    """No valid console session: pages redirect to sign-in, partials answer 401."""


class Forbidden(Exception):
    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def settings_of(request: Request) -> ConsoleSettings:
    settings: ConsoleSettings = request.app.state.settings
    return settings


def store_of(request: Request) -> SessionStore:
    store: SessionStore = request.app.state.sessions
    return store


async def current_sign_in(request: Request) -> SignIn:
    settings = settings_of(request)
    found = await store_of(request).get(request.cookies.get(settings.session_cookie_name))
    if found is None:
        raise NotSignedIn
    request.state.principal = found.principal
    return found


Session = Annotated[SignIn, Depends(current_sign_in)]


def api_for(sign_in: Session, request: Request) -> ServiceApi:
    services: Services = request.app.state.services
    return services.as_(sign_in.token)


Api = Annotated[ServiceApi, Depends(api_for)]


def live_position(request: Request) -> str:
    """The live hub's position as a page starts reading the services (a dependency runs
    before the route's body): its stream opens from here, so an event that arrives while
    the page is being read or loaded is sent to it rather than lost."""
    hub: LiveHub = request.app.state.live_hub
    return hub.position


LivePosition = Annotated[str, Depends(live_position)]


async def check_csrf(request: Request, sign_in: Session) -> None:
    """Every state-changing request echoes the session's CSRF token (form field or the
    X-CSRF-Token header htmx sends); a cross-site form cannot know it."""
    sent = request.headers.get("x-csrf-token")
    if sent is None:
        form = await request.form()
        value = form.get("csrf_token")
        sent = value if isinstance(value, str) else None
    if not sent or not secrets.compare_digest(sent, sign_in.csrf):
        raise Forbidden("the form has expired or did not come from this console; reload the page")


Csrf = Depends(check_csrf)


def ensure_site_page(principal: Principal, site_id: str) -> None:
    """The APIs' site rule, applied before any call: another site's page is a 403 page."""
    if not principal.can_access_site(site_id):
        raise Forbidden(f"You do not work at {site_id}: this page is not available to you.")


def render(
    request: Request,
    template: str,
    sign_in: SignIn | None,
    status: int = 200,
    /,
    **context: Any,
) -> HTMLResponse:
    return TEMPLATES.TemplateResponse(
        request,
        template,
        {
            "me": sign_in.principal if sign_in else None,
            "csrf_token": sign_in.csrf if sign_in else "",
            "now": utc_now(),
            "records_configured": bool(settings_of(request).records_url),
            "timezone": settings_of(request).floor_timezone,
            **context,
        },
        status_code=status,
    )


def redirect(path: str) -> Response:
    return RedirectResponse(path, status_code=303)
