"""JWT bearer tokens (CONTRACT section 4): claims `sub`, `role`, `sites`.

Development signs with HS256 and KAP_JWT_SECRET; production verifies RS256
against the identity provider's JWKS (KAP_JWT_JWKS_URL), which also makes key
rotation a matter of publishing a new key id.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from dataclasses import dataclass, field
from datetime import timedelta

import jwt
from jwt.types import Options
from pydantic import BaseModel, Field, ValidationError
from starlette.concurrency import run_in_threadpool

from ..events.enums import Role
from ..events.envelope import utc_now

ISSUER = "kap-platform"
CACHE_SECONDS = 60.0
CACHE_SIZE = 4096
WILDCARD_SITE = "*"


class Principal(BaseModel):
    """Who is calling: a clinician or device id, their role and their sites."""

    sub: str = Field(min_length=1)
    role: Role
    sites: list[str] = Field(default_factory=list)

    @property
    def all_sites(self) -> bool:
        """`*` means every site, for an admin only (CONTRACT 6.4)."""
        return self.role is Role.ADMIN and WILDCARD_SITE in self.sites

    @property
    def misuses_wildcard(self) -> bool:
        """A `*` claim on any other role: refused (403), never narrowed silently."""
        return self.role is not Role.ADMIN and WILDCARD_SITE in self.sites

    def can_access_site(self, site_id: str) -> bool:
        return self.all_sites or (site_id in self.sites and site_id != WILDCARD_SITE)


class InvalidToken(Exception):
    pass


@dataclass(frozen=True)
class TokenVerifier:
    hs256_secret: str | None = None
    jwks_url: str | None = None
    # Identity providers put an `aud` claim in their tokens; when set, it must match.
    audience: str | None = None
    # Tokens already verified: a client sends the same token with every request, and
    # verifying it (signature, claims, the Principal model) cost ~0.2-0.7 ms a request
    # in issue 13's profile. An entry lasts until the token's `exp`, and at most
    # CACHE_SECONDS (so a key withdrawn from the JWKS stops being honoured soon after).
    _verified: OrderedDict[str, tuple[Principal, float]] = field(
        default_factory=OrderedDict, init=False, repr=False, compare=False
    )

    def __post_init__(self) -> None:
        if not self.hs256_secret and not self.jwks_url:
            raise ValueError("set KAP_JWT_SECRET (development) or KAP_JWT_JWKS_URL (production)")

    def verify(self, token: str) -> Principal:
        """The token's principal; raises InvalidToken (signature, expiry, claims)."""
        now = time.time()
        cached = self._cached(token, now)
        if cached is not None:
            return cached
        principal, expires = self._verify_uncached(token)
        self._verified[token] = (principal, min(expires, now + CACHE_SECONDS))
        if len(self._verified) > CACHE_SIZE:
            self._verified.popitem(last=False)  # the oldest
        return principal

    def _cached(self, token: str, now: float) -> Principal | None:
        entry = self._verified.get(token)
        return entry[0] if entry is not None and now < entry[1] else None

    def _verify_uncached(self, token: str) -> tuple[Principal, float]:
        options: Options = {"require": ["sub", "exp"], "verify_aud": bool(self.audience)}
        try:
            if self.jwks_url:
                key = _jwks_client(self.jwks_url).get_signing_key_from_jwt(token).key
                claims = jwt.decode(
                    token, key, algorithms=["RS256"], audience=self.audience, options=options
                )
            else:
                claims = jwt.decode(
                    token,
                    self.hs256_secret or "",
                    algorithms=["HS256"],
                    audience=self.audience,
                    options=options,
                )
        except jwt.PyJWTError as exc:
            raise InvalidToken(str(exc).splitlines()[0]) from exc
        try:
            return Principal.model_validate(claims), float(claims["exp"])
        except ValidationError as exc:
            first = exc.errors()[0]
            claim = ".".join(str(p) for p in first["loc"]) or "claims"
            raise InvalidToken(f"claim {claim}: {first['msg']}") from exc

    async def verify_async(self, token: str) -> Principal:
        """`verify` from the event loop: a verified token or an HS256 one is checked
        inline; a new JWKS token may need the provider's keys fetched over the network,
        so it is verified in a worker thread."""
        if self.jwks_url and self._cached(token, time.time()) is None:
            return await run_in_threadpool(self.verify, token)
        return self.verify(token)


_clients: dict[str, jwt.PyJWKClient] = {}


def _jwks_client(url: str) -> jwt.PyJWKClient:
    # PyJWKClient caches keys; one per URL for the life of the process.
    if url not in _clients:
        _clients[url] = jwt.PyJWKClient(url, cache_keys=True, lifespan=300)
    return _clients[url]


def mint_token(
    secret: str,
    *,
    sub: str,
    role: Role | str,
    sites: list[str],
    ttl: timedelta = timedelta(hours=12),
) -> str:
    """A development token (HS256). Production tokens come from the identity provider."""
    now = utc_now()
    claims = {
        "sub": sub,
        "role": str(Role(role)),
        "sites": sites,
        "iss": ISSUER,
        "iat": int(now.timestamp()),
        "exp": int((now + ttl).timestamp()),
    }
    return jwt.encode(claims, secret, algorithm="HS256")
