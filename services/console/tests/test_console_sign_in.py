"""Sign-in: OpenID Connect authorization code + PKCE against a fake IdP served by a
real local HTTP server; development sign-in; the session cookie's attributes; CSRF;
the site rule on pages before any service is called."""

from __future__ import annotations

import re
import sqlite3
import tempfile
from collections.abc import Iterator
from urllib.parse import parse_qs, urlparse

import httpx
import pytest
from fastapi.testclient import TestClient

from kap_console.bootstrap import build
from kap_console.config import ConsoleSettings

from .fake_idp import CLIENT_ID, FakeIdp

SECRET = "console-unit-test-secret-long-enough-for-hs256"
CONSOLE = "https://console.test"


def settings(**changes: object) -> ConsoleSettings:
    base: dict[str, object] = {
        "kap_jwt_secret": SECRET,
        # Nothing listens here: the live reader keeps retrying in the background.
        "kafka": {"bootstrap_servers": "127.0.0.1:9"},
        "intake_url": "http://127.0.0.1:9",
        "scheduling_url": "http://127.0.0.1:9",
        "monitoring_url": "http://127.0.0.1:9",
        "notifications_url": "http://127.0.0.1:9",
        # Sign-in sessions live in the console's own database: one per test app.
        "var_dir": tempfile.mkdtemp(prefix="kap-console-test-"),
    }
    return ConsoleSettings.model_validate({**base, **changes})


@pytest.fixture
def idp() -> Iterator[FakeIdp]:
    server = FakeIdp(claims={"sub": "dr-north", "role": "prescriber", "sites": ["site-north"]})
    yield server
    server.close()


def oidc_client(idp: FakeIdp) -> TestClient:
    app = build(
        settings(
            oidc_issuer=idp.issuer,
            oidc_client_id=CLIENT_ID,
            oidc_redirect_uri=f"{CONSOLE}/auth/callback",
            kap_jwt_secret=None,
            kap_jwt_jwks_url=f"{idp.issuer}/jwks",
        )
    )
    return TestClient(app, base_url=CONSOLE, follow_redirects=False)


def test_oidc_authorization_code_with_pkce_signs_the_clinician_in(idp: FakeIdp) -> None:
    with oidc_client(idp) as client:
        start = client.get("/sign-in/oidc", params={"next": "/inbox"})
        assert start.status_code == 303
        authorize = urlparse(start.headers["location"])
        query = {k: v[0] for k, v in parse_qs(authorize.query).items()}
        assert f"{authorize.scheme}://{authorize.netloc}" == idp.issuer
        assert query["response_type"] == "code"
        assert query["client_id"] == CLIENT_ID
        assert query["code_challenge_method"] == "S256"
        assert query["code_challenge"]
        assert query["state"]
        assert query["nonce"]
        assert "code_verifier" not in query  # the verifier never leaves the console

        # The browser follows to the real IdP server, which redirects back with a code.
        back = httpx.get(start.headers["location"], follow_redirects=False)
        assert back.status_code == 302
        callback = urlparse(back.headers["location"])
        done = client.get(f"{callback.path}?{callback.query}")

        assert done.status_code == 303, done.text
        assert done.headers["location"] == "/inbox"
        cookie = done.headers["set-cookie"].lower()
        assert "httponly" in cookie
        assert "secure" in cookie
        assert "samesite=lax" in cookie
        # The token stayed server-side: the cookie is an opaque id, not the JWT.
        session_id = client.cookies.get("kap_console_session")
        assert session_id
        assert session_id.count(".") == 0
        store = client.app.state.sessions  # type: ignore[attr-defined]
        signed_in = client.portal.call(store.get, session_id)  # type: ignore[union-attr]
        assert signed_in is not None
        assert signed_in.principal.sub == "dr-north"
        assert signed_in.principal.role == "prescriber"
        assert signed_in.principal.sites == ["site-north"]
        # The IdP saw the verifier whose S256 hash was the challenge (checked IdP-side).
        assert idp.token_requests[-1]["code_verifier"]


def test_a_callback_with_a_forged_state_signs_nobody_in(idp: FakeIdp) -> None:
    with oidc_client(idp) as client:
        start = client.get("/sign-in/oidc")
        back = httpx.get(start.headers["location"], follow_redirects=False)
        code = parse_qs(urlparse(back.headers["location"]).query)["code"][0]
        forged = client.get("/auth/callback", params={"code": code, "state": "forged"})
        assert forged.status_code == 400
        assert "kap_console_session" not in client.cookies
        assert idp.token_requests == []  # the code was never even exchanged


def test_a_wrong_pkce_verifier_is_refused_by_the_idp(idp: FakeIdp) -> None:
    with oidc_client(idp) as client:
        start = client.get("/sign-in/oidc")
        back = httpx.get(start.headers["location"], follow_redirects=False)
        # The pending login is in the console's database (any replica may get the redirect).
        db = client.app.state.settings.var_dir / "console.db"  # type: ignore[attr-defined]
        with sqlite3.connect(db) as connection:
            changed = connection.execute(
                "UPDATE pending_logins SET code_verifier = ?",
                ("not-the-verifier-the-challenge-was-made-from-0123456789",),
            )
            assert changed.rowcount == 1
        callback = urlparse(back.headers["location"])
        refused = client.get(f"{callback.path}?{callback.query}")
        assert refused.status_code == 401
        assert "token exchange failed" in refused.text
        assert "kap_console_session" not in client.cookies


@pytest.fixture
def dev_client() -> Iterator[TestClient]:
    app = build(settings(dev_sign_in=True, dev_clinicians="rn-north:nurse:site-north"))
    with TestClient(app, base_url=CONSOLE, follow_redirects=False) as client:
        yield client


def _dev_sign_in(client: TestClient) -> None:
    response = client.post("/sign-in/dev", data={"clinician_id": "rn-north"})
    assert response.status_code == 303


def test_pages_need_a_sign_in(dev_client: TestClient) -> None:
    response = dev_client.get("/floor/site-north")
    assert response.status_code == 303
    assert response.headers["location"].startswith("/sign-in")
    partial = dev_client.get("/cards/s1", headers={"HX-Request": "true"})
    assert partial.status_code == 401


def test_development_sign_in_only_for_listed_clinicians_when_enabled(
    dev_client: TestClient,
) -> None:
    refused = dev_client.post("/sign-in/dev", data={"clinician_id": "dr-unknown"})
    assert refused.status_code == 403
    with TestClient(build(settings(dev_sign_in=False)), base_url=CONSOLE) as off:
        response = off.post(
            "/sign-in/dev",
            data={"use": "other", "other_id": "x", "other_role": "admin", "other_sites": "*"},
        )
        assert response.status_code == 403


def test_another_sites_page_is_a_403_page(dev_client: TestClient) -> None:
    _dev_sign_in(dev_client)
    for path in ("/floor/site-south", "/schedule/site-south", "/coordinator/site-south"):
        response = dev_client.get(path)
        assert response.status_code == 403, path
        assert "text/html" in response.headers["content-type"]


def test_a_form_without_the_sessions_csrf_token_changes_nothing(dev_client: TestClient) -> None:
    _dev_sign_in(dev_client)
    response = dev_client.post("/cards/s1/discharge")
    assert response.status_code == 403
    assert "did not come from this console" in response.text
    wrong = dev_client.post("/cards/s1/discharge", headers={"X-CSRF-Token": "guess"})
    assert wrong.status_code == 403


def test_pages_forbid_inline_script_and_framing(dev_client: TestClient) -> None:
    page = dev_client.get("/sign-in")
    policy = page.headers["content-security-policy"]
    assert "script-src 'self'" in policy
    assert "frame-ancestors 'none'" in policy
    assert "<script>" not in page.text  # only external, same-origin scripts


def test_replicas_share_sign_in_sessions_through_the_consoles_database() -> None:
    """Two console instances on one database: a clinician signed in on one is signed
    in on the other (no sticky sessions); signing out on one signs out everywhere. The
    database holds neither the cookie's value nor anything clinical."""
    shared = settings(dev_sign_in=True, dev_clinicians="rn-north:nurse:site-north")
    with (
        TestClient(build(shared), base_url=CONSOLE, follow_redirects=False) as first,
        TestClient(build(shared), base_url=CONSOLE, follow_redirects=False) as second,
    ):
        _dev_sign_in(first)
        cookie = first.cookies["kap_console_session"]
        second.cookies.set("kap_console_session", cookie)
        # Signed in on the other replica: its page is served (a 403 page for another
        # site, decided from the session's principal, not a redirect to sign in).
        assert second.get("/floor/site-south").status_code == 403
        with sqlite3.connect(shared.var_dir / "console.db") as connection:
            stored = connection.execute("SELECT session_key, token FROM sign_in_sessions")
            [(key, token)] = stored.fetchall()
        assert key != cookie  # a hash of the cookie's id is the key
        assert cookie not in token
        page = second.get("/floor/site-south").text  # the session's CSRF token, as served
        csrf = re.search(r'"X-CSRF-Token": "([^"]+)"', page)
        assert csrf is not None
        signed_out = first.post("/sign-out", headers={"X-CSRF-Token": csrf.group(1)})
        assert signed_out.status_code == 303
        assert second.get("/floor/site-north").status_code == 303  # signed out here too
