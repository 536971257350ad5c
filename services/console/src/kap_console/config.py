"""Console settings (CONTRACT sections 5 and 6.1), read from the environment."""

from __future__ import annotations

import os
import socket

from pydantic import Field, SecretStr

from kap_shared.messaging.linger import READ_MODEL_LINGER_MS
from kap_shared.settings import LingerMs, ServiceSettings


def _instance_id() -> str:
    # One consumer group per replica (console-<instance id>): every replica sees every event.
    return f"{socket.gethostname()}-{os.getpid()}"


class ConsoleSettings(ServiceSettings):
    service_name: str = "console"
    http_port: int = 8000

    # The services the console calls with the clinician's token (server-side only).
    intake_url: str = "http://127.0.0.1:8001"
    scheduling_url: str = "http://127.0.0.1:8002"
    monitoring_url: str = "http://127.0.0.1:8003"
    notifications_url: str = "http://127.0.0.1:8004"
    # Records (CONTRACT 6.3) is optional: without it the timeline and PMF panels say so.
    records_url: str | None = None
    api_timeout_seconds: float = Field(default=10.0, gt=0)

    instance_id: str = Field(default_factory=_instance_id)

    # Development sign-in: pick a seeded clinician, the console mints an HS256 token
    # with KAP_JWT_SECRET. Never enable it in production.
    dev_sign_in: bool = False
    # Who may be chosen on the development sign-in page: "id:role:site[|site...]" comma
    # separated (make run passes the seeded clinicians).
    dev_clinicians: str = ""
    # The day the floor shows is the site's calendar day in this zone.
    floor_timezone: str = "UTC"
    # Production sign-in: OpenID Connect authorization code + PKCE. The access token the
    # IdP issues (claims sub, role, sites) is what the services verify against the JWKS.
    oidc_issuer: str | None = None
    oidc_client_id: str | None = None
    oidc_client_secret: SecretStr | None = None
    oidc_redirect_uri: str | None = None
    oidc_scopes: str = "openid profile"

    # Session cookie: HttpOnly and SameSite always; Secure unless explicitly turned off
    # for plain-http development (make run sets it off).
    session_cookie_name: str = "kap_console_session"
    session_cookie_secure: bool = True
    session_ttl_seconds: int = Field(default=12 * 3600, gt=0)

    # Server-Sent Events: a comment this often keeps proxies from closing an idle stream.
    sse_keepalive_seconds: float = Field(default=15.0, gt=0)
    # The live feed's events only tell a page what to fetch again: lingering, it wakes a
    # few times a second instead of at every event, the moments the alert path needs the
    # cores (kap_shared.messaging.linger; bench/README.md, alert round 19). 0: at once.
    consumer_linger_ms: LingerMs = READ_MODEL_LINGER_MS
