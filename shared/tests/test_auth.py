"""JWT bearer tokens (CONTRACT section 4): HS256 in development, RS256 via JWKS in production."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm

from kap_shared.auth import InvalidToken, Principal, TokenVerifier, mint_token
from kap_shared.auth.tokens import CACHE_SECONDS
from kap_shared.events.enums import Role

TEST_SECRET = "unit-test-secret-of-at-least-32-bytes!"
OTHER_SECRET = "another-secret-that-is-also-32-bytes-long"


def claims(**overrides: Any) -> dict[str, Any]:
    now = datetime.now(UTC)
    base: dict[str, Any] = {
        "sub": "dr-ada",
        "role": "prescriber",
        "sites": ["site-north"],
        "iat": int(now.timestamp()),
        "exp": int((now + timedelta(minutes=5)).timestamp()),
    }
    base.update(overrides)
    return {k: v for k, v in base.items() if v is not None}


# --- HS256 (development) ------------------------------------------------------------------


def test_hs256_mint_and_verify_round_trip() -> None:
    token = mint_token(TEST_SECRET, sub="rn-joan", role=Role.NURSE, sites=["site-north", "s2"])
    principal = TokenVerifier(hs256_secret=TEST_SECRET).verify(token)
    assert principal == Principal(sub="rn-joan", role=Role.NURSE, sites=["site-north", "s2"])


def test_minted_token_carries_contract_claims_and_expiry() -> None:
    token = mint_token(TEST_SECRET, sub="gw-7", role="device", sites=["*"], ttl=timedelta(hours=2))
    payload = jwt.decode(token, TEST_SECRET, algorithms=["HS256"])
    assert (payload["sub"], payload["role"], payload["sites"]) == ("gw-7", "device", ["*"])
    assert payload["exp"] - payload["iat"] == 2 * 3600
    assert jwt.get_unverified_header(token)["alg"] == "HS256"


def test_mint_token_refuses_an_unknown_role() -> None:
    with pytest.raises(ValueError, match="janitor"):
        mint_token(TEST_SECRET, sub="x", role="janitor", sites=["site-north"])


def test_expired_token_is_invalid() -> None:
    token = mint_token(TEST_SECRET, sub="dr-ada", role="prescriber", sites=["s"], ttl=timedelta(-1))
    with pytest.raises(InvalidToken, match="expired"):
        TokenVerifier(hs256_secret=TEST_SECRET).verify(token)


class _Clock:
    """time.time for kap_shared.auth.tokens, moved by hand."""

    def __init__(self) -> None:
        self.now = datetime.now(UTC).timestamp()

    def time(self) -> float:
        return self.now


@pytest.fixture
def decodes(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Counts the signature checks the verifier makes (one per token it decodes)."""
    seen: list[str] = []
    real = jwt.decode

    def counting(token: str, *args: Any, **kwargs: Any) -> Any:
        seen.append(token)
        return real(token, *args, **kwargs)

    monkeypatch.setattr(jwt, "decode", counting)
    return seen


def test_a_verified_token_is_not_verified_again(decodes: list[str]) -> None:
    verifier = TokenVerifier(hs256_secret=TEST_SECRET)
    token = mint_token(TEST_SECRET, sub="rn-joan", role=Role.NURSE, sites=["site-north"])
    assert verifier.verify(token) == verifier.verify(token)
    assert decodes == [token]


def test_a_cached_token_is_not_served_after_its_expiry(
    decodes: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Past `exp` the token goes back to PyJWT, which refuses it as expired
    (test_expired_token_is_invalid); the cache never answers for it."""
    clock = _Clock()
    monkeypatch.setattr("kap_shared.auth.tokens.time", clock)
    verifier = TokenVerifier(hs256_secret=TEST_SECRET)
    token = jwt.encode(claims(exp=int(clock.now) + 30), TEST_SECRET, algorithm="HS256")
    verifier.verify(token)
    verifier.verify(token)
    clock.now += 31
    verifier.verify(token)  # PyJWT's clock is the real one: still valid for it
    assert decodes == [token, token]


def test_a_cached_token_is_verified_afresh_after_the_cache_lifetime(
    decodes: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    clock = _Clock()
    monkeypatch.setattr("kap_shared.auth.tokens.time", clock)
    verifier = TokenVerifier(hs256_secret=TEST_SECRET)
    token = mint_token(TEST_SECRET, sub="rn-joan", role=Role.NURSE, sites=["site-north"])
    verifier.verify(token)
    clock.now += CACHE_SECONDS + 1
    verifier.verify(token)
    assert decodes == [token, token]


def test_a_tampered_token_is_not_served_from_the_cache(decodes: list[str]) -> None:
    verifier = TokenVerifier(hs256_secret=TEST_SECRET)
    token = mint_token(TEST_SECRET, sub="rn-joan", role=Role.NURSE, sites=["site-north"])
    verifier.verify(token)
    header, _payload, signature = token.split(".")
    forged = jwt.encode(claims(sub="rn-joan", role="admin", sites=["*"]), "x" * 32, "HS256")
    with pytest.raises(InvalidToken):
        verifier.verify(".".join((header, forged.split(".")[1], signature)))


def test_token_signed_with_another_secret_is_invalid() -> None:
    token = mint_token(OTHER_SECRET, sub="dr-ada", role="prescriber", sites=["site-north"])
    with pytest.raises(InvalidToken, match=r"(?i)signature"):
        TokenVerifier(hs256_secret=TEST_SECRET).verify(token)


@pytest.mark.parametrize(
    ("overrides", "reason"),
    [
        ({"sub": None}, "sub"),
        ({"exp": None}, "exp"),
        ({"role": "janitor"}, "role"),
        ({"role": None}, "role"),
        ({"sub": ""}, "sub"),
    ],
    ids=["missing-sub", "missing-exp", "unknown-role", "missing-role", "empty-sub"],
)
def test_token_with_bad_claims_is_invalid(overrides: dict[str, Any], reason: str) -> None:
    # Claims are made when the test runs: made at import they expire in a long session.
    token = jwt.encode(claims(**overrides), TEST_SECRET, algorithm="HS256")
    with pytest.raises(InvalidToken) as exc:
        TokenVerifier(hs256_secret=TEST_SECRET).verify(token)
    # The claim is named either in the message or in the chained cause.
    assert reason in f"{exc.value} {exc.value.__cause__}"


def test_unsigned_alg_none_token_is_invalid() -> None:
    token = jwt.encode(claims(role="admin", sites=["*"]), key="", algorithm="none")
    with pytest.raises(InvalidToken):
        TokenVerifier(hs256_secret=TEST_SECRET).verify(token)


@pytest.mark.parametrize("garbage", ["", "not-a-jwt", "a.b.c", "Bearer x.y.z"])
def test_garbage_is_invalid_token_not_a_crash(garbage: str) -> None:
    with pytest.raises(InvalidToken):
        TokenVerifier(hs256_secret=TEST_SECRET).verify(garbage)


def test_verifier_needs_a_secret_or_a_jwks_url() -> None:
    with pytest.raises(ValueError, match="KAP_JWT_SECRET"):
        TokenVerifier()


# --- Principal ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("role", "sites", "site", "allowed"),
    [
        (Role.THERAPIST, ["site-north"], "site-north", True),
        (Role.THERAPIST, ["site-north"], "site-south", False),
        (Role.THERAPIST, ["site-north", "site-south"], "site-south", True),
        (Role.ADMIN, ["*"], "site-anywhere", True),
        # CONTRACT 6.4: '*' is honoured only for admin
        (Role.THERAPIST, ["*"], "site-anywhere", False),
        (Role.DEVICE, ["*", "site-north"], "site-south", False),
        (Role.THERAPIST, [], "site-north", False),
        (Role.THERAPIST, ["site-north"], "site-nort", False),
        (Role.THERAPIST, ["site-north"], "*", False),
        (Role.THERAPIST, ["*"], "*", False),
    ],
)
def test_principal_can_access_site(role: Role, sites: list[str], site: str, allowed: bool) -> None:
    principal = Principal(sub="th-grace", role=role, sites=sites)
    assert principal.can_access_site(site) is allowed


# --- RS256 via JWKS (production) ----------------------------------------------------------


@pytest.fixture(scope="module")
def rsa_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture(scope="module")
def other_rsa_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


class JwksServer:
    """A real HTTP server on 127.0.0.1 serving one JWKS document."""

    def __init__(self, jwks: dict[str, Any]) -> None:
        body = json.dumps(jwks).encode()
        self.requests = 0
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                server.requests += 1
                if self.path != "/.well-known/jwks.json":
                    self.send_error(404)
                    return
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                return

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/.well-known/jwks.json"
        self.thread = threading.Thread(
            target=self.httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )

    def __enter__(self) -> JwksServer:
        self.thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(timeout=5)


@pytest.fixture
def jwks_server(
    rsa_key: rsa.RSAPrivateKey, monkeypatch: pytest.MonkeyPatch
) -> Iterator[JwksServer]:
    for var in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy", "ALL_PROXY"):
        monkeypatch.delenv(var, raising=False)
    jwk = RSAAlgorithm.to_jwk(rsa_key.public_key(), as_dict=True)
    jwk.update(kid="idp-key-1", use="sig", alg="RS256")
    with JwksServer({"keys": [jwk]}) as server:
        yield server


def rs256(key: rsa.RSAPrivateKey, kid: str = "idp-key-1", **overrides: Any) -> str:
    return jwt.encode(claims(**overrides), key, algorithm="RS256", headers={"kid": kid})


def test_rs256_token_verified_against_jwks_served_over_http(
    jwks_server: JwksServer, rsa_key: rsa.RSAPrivateKey
) -> None:
    verifier = TokenVerifier(jwks_url=jwks_server.url)
    principal = verifier.verify(rs256(rsa_key, sites=["site-north", "site-south"]))
    assert principal == Principal(
        sub="dr-ada", role=Role.PRESCRIBER, sites=["site-north", "site-south"]
    )
    assert jwks_server.requests >= 1


def test_rs256_token_signed_by_another_key_with_the_same_kid_is_invalid(
    jwks_server: JwksServer, other_rsa_key: rsa.RSAPrivateKey
) -> None:
    with pytest.raises(InvalidToken, match=r"(?i)signature"):
        TokenVerifier(jwks_url=jwks_server.url).verify(rs256(other_rsa_key))


def test_rs256_token_with_unknown_kid_is_invalid(
    jwks_server: JwksServer, other_rsa_key: rsa.RSAPrivateKey
) -> None:
    with pytest.raises(InvalidToken):
        TokenVerifier(jwks_url=jwks_server.url).verify(rs256(other_rsa_key, kid="attacker"))


def test_rs256_expired_token_is_invalid(
    jwks_server: JwksServer, rsa_key: rsa.RSAPrivateKey
) -> None:
    past = int((datetime.now(UTC) - timedelta(minutes=1)).timestamp())
    with pytest.raises(InvalidToken, match="expired"):
        TokenVerifier(jwks_url=jwks_server.url).verify(rs256(rsa_key, exp=past))


def test_rs256_verifier_rejects_hs256_token_no_algorithm_confusion(
    jwks_server: JwksServer,
) -> None:
    token = mint_token(TEST_SECRET, sub="dr-ada", role="admin", sites=["*"])
    with pytest.raises(InvalidToken):
        TokenVerifier(jwks_url=jwks_server.url, hs256_secret=TEST_SECRET).verify(token)


def test_rs256_token_with_unknown_role_is_invalid(
    jwks_server: JwksServer, rsa_key: rsa.RSAPrivateKey
) -> None:
    with pytest.raises(InvalidToken) as exc:
        TokenVerifier(jwks_url=jwks_server.url).verify(rs256(rsa_key, role="superuser"))
    assert "role" in str(exc.value.__cause__)
