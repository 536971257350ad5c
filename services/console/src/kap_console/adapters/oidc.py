"""OpenID Connect sign-in: authorization code flow with PKCE (S256), via Authlib.

The IdP's discovery document gives the endpoints and the JWKS; the access token it
issues carries the platform's claims (`sub`, `role`, `sites`) and is verified with
the same `TokenVerifier` the services use against the same JWKS, so the console
and the services agree on who the clinician is. The ID token's nonce and signature
are checked too.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import Any

import httpx
import jwt
from authlib.common.security import generate_token
from authlib.integrations.httpx_client import AsyncOAuth2Client

from kap_shared.auth import Principal, TokenVerifier


class SignInFailed(Exception):
    pass


@dataclass(frozen=True)
class Provider:
    issuer: str
    authorization_endpoint: str
    token_endpoint: str
    jwks_uri: str


@dataclass(frozen=True)
class AuthorizationRequest:
    url: str
    state: str
    code_verifier: str
    nonce: str


@dataclass(frozen=True)
class Tokens:
    access_token: str
    principal: Principal
    expires_at: float | None


class OidcClient:
    def __init__(
        self,
        *,
        issuer: str,
        client_id: str,
        client_secret: str | None,
        redirect_uri: str,
        scopes: str,
        audience: str | None = None,
    ) -> None:
        self._issuer = issuer.rstrip("/")
        self._client_id = client_id
        self._client_secret = client_secret
        self._redirect_uri = redirect_uri
        self._scopes = scopes
        self._audience = audience
        self._provider: Provider | None = None

    async def provider(self) -> Provider:
        if self._provider is None:
            url = f"{self._issuer}/.well-known/openid-configuration"
            async with httpx.AsyncClient(timeout=10) as client:
                response = await client.get(url)
            if response.status_code != 200:
                raise SignInFailed(f"discovery failed: {response.status_code}")
            meta: dict[str, Any] = response.json()
            if meta.get("issuer", "").rstrip("/") != self._issuer:
                raise SignInFailed("discovery document names another issuer")
            self._provider = Provider(
                issuer=meta["issuer"],
                authorization_endpoint=meta["authorization_endpoint"],
                token_endpoint=meta["token_endpoint"],
                jwks_uri=meta["jwks_uri"],
            )
        return self._provider

    def _client(self) -> AsyncOAuth2Client:
        return AsyncOAuth2Client(
            client_id=self._client_id,
            client_secret=self._client_secret,
            scope=self._scopes,
            redirect_uri=self._redirect_uri,
            code_challenge_method="S256",
            token_endpoint_auth_method="client_secret_post" if self._client_secret else "none",
        )

    async def authorization_request(self) -> AuthorizationRequest:
        provider = await self.provider()
        code_verifier = generate_token(64)
        state, nonce = secrets.token_urlsafe(24), secrets.token_urlsafe(24)
        async with self._client() as client:
            url, _ = client.create_authorization_url(
                provider.authorization_endpoint,
                state=state,
                nonce=nonce,
                code_verifier=code_verifier,
            )
        return AuthorizationRequest(url, state, code_verifier, nonce)

    async def exchange(self, code: str, code_verifier: str, nonce: str) -> Tokens:
        provider = await self.provider()
        async with self._client() as client:
            try:
                token = await client.fetch_token(
                    provider.token_endpoint, code=code, code_verifier=code_verifier
                )
            except Exception as exc:  # authlib raises OAuthError and httpx errors
                raise SignInFailed(f"token exchange failed: {exc}") from exc
        access_token = token.get("access_token")
        id_token = token.get("id_token")
        if not access_token or not id_token:
            raise SignInFailed("the IdP returned no access token or ID token")
        self._check_id_token(id_token, provider, nonce)
        verifier = TokenVerifier(jwks_url=provider.jwks_uri, audience=self._audience)
        try:
            principal = verifier.verify(access_token)
        except Exception as exc:
            raise SignInFailed(f"access token rejected: {exc}") from exc
        expires_at = token.get("expires_at")
        return Tokens(access_token, principal, float(expires_at) if expires_at else None)

    def _check_id_token(self, id_token: str, provider: Provider, nonce: str) -> None:
        try:
            key = jwt.PyJWKClient(provider.jwks_uri).get_signing_key_from_jwt(id_token).key
            claims = jwt.decode(
                id_token,
                key,
                algorithms=["RS256"],
                audience=self._client_id,
                issuer=provider.issuer,
            )
        except jwt.PyJWTError as exc:
            raise SignInFailed(f"ID token rejected: {exc}") from exc
        if claims.get("nonce") != nonce:
            raise SignInFailed("ID token nonce does not match the sign-in request")
