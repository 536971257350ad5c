"""`Idempotency-Key` on creating POSTs (CONTRACT 6.4).

A client that lost the response (its connection died, the service was killed
after committing) retries with the same key and body and gets the FIRST
response back, status and body, with no second effect; the same key with
another body (or path) is 409 `idempotency_key_reused`. Keys are scoped per
caller (the token's `sub`) and stored in the service's own database, in the
same transaction as the effect (`kap_shared.messaging.idempotency`).

A route opts in with `dependencies=[IdempotencyKey]` (which also documents the
header in OpenAPI); `IdempotencyMiddleware` is installed by `ServiceRuntime`.
Only a successful (2xx) response is stored; a refused or failed request with a
key stores nothing, and its deferred work is rolled back (a retry is evaluated
afresh).
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Depends, Header
from fastapi.responses import JSONResponse
from sqlalchemy.exc import IntegrityError
from starlette.datastructures import Headers
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ..auth.dependencies import verified_principal
from ..auth.tokens import InvalidToken
from ..logging import get_logger
from ..messaging.idempotency import CURRENT, IdempotencyRecord, RequestScope, request_hash, stored
from .asgi import buffered_body
from .errors import error_body

log = get_logger(__name__)

HEADER = "Idempotency-Key"
MAX_KEY_LENGTH = 255
REPLAYED_HEADER = "Idempotent-Replayed"
REUSED = "idempotency_key_reused"


async def _arm(
    idempotency_key: Annotated[
        str | None,
        Header(
            alias=HEADER,
            min_length=1,
            max_length=MAX_KEY_LENGTH,
            description=(
                "Makes a retry safe: the same key and body again returns the first "
                "response (status and body, header `Idempotent-Replayed: true`) with no "
                "second effect; the same key with another body is 409 "
                "`idempotency_key_reused`. Keys are per caller; use a fresh UUID per "
                "intended request."
            ),
        ),
    ] = None,
) -> str | None:
    scope = CURRENT.get()
    if idempotency_key and scope is not None:
        scope.arm()
    return idempotency_key


# `@router.post(..., dependencies=[IdempotencyKey])` on every creating POST.
IdempotencyKey = Depends(_arm)


class IdempotencyMiddleware:
    """Replays stored responses, and commits a keyed request's effect together with
    its response before sending it."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "POST":
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        key = headers.get(HEADER.lower())
        caller = await _caller(scope, headers) if key and len(key) <= MAX_KEY_LENGTH else None
        if not key or caller is None:
            # No key, or a request the route refuses anyway (401, 422): nothing to do.
            await self.app(scope, receive, send)
            return
        body, receive = await buffered_body(receive)
        fingerprint = request_hash(
            scope["method"], scope["path"], scope.get("query_string", b""), body
        )
        sessions = scope["app"].state.runtime.sessions
        async with sessions() as session:
            record = await stored(session, caller, key)
        if record is not None:
            await _replay(record, fingerprint, scope, receive, send)
            return
        request = RequestScope(caller, key, fingerprint, scope["method"], scope["path"])
        response = _CapturedResponse()
        token = CURRENT.set(request)
        try:
            await self.app(scope, receive, response.capture)
        except BaseException:
            await request.discard()
            raise
        finally:
            CURRENT.reset(token)
        if request.held:
            if 200 <= response.status < 300:
                try:
                    await request.complete(response.status, response.content_type, response.body)
                except IntegrityError:
                    # A concurrent request with the same key committed first: answer as it did.
                    async with sessions() as session:
                        record = await stored(session, caller, key)
                    if record is None:
                        raise
                    log.info("idempotency.concurrent_replay", path=scope["path"])
                    await _replay(record, fingerprint, scope, receive, send)
                    return
            else:
                await request.discard()
        await response.send_to(send)


async def _caller(scope: Scope, headers: Headers) -> str | None:
    """The verified token's subject (keys are per caller); None without a valid token.
    The route's auth dependency reuses this verification (`verified_principal`)."""
    scheme, _, token = headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token:
        return None
    try:
        return (await verified_principal(scope, token.strip())).sub
    except InvalidToken:
        return None


async def _replay(
    record: IdempotencyRecord, fingerprint: str, scope: Scope, receive: Receive, send: Send
) -> None:
    if record.request_hash != fingerprint:
        response: Any = JSONResponse(
            error_body(
                REUSED,
                f"{HEADER} was already used for another request; use a new key",
                {"first_request": f"{record.method} {record.path}"},
            ),
            status_code=409,
        )
    else:
        response = Response(
            record.body,
            status_code=record.status_code,
            media_type=record.content_type or None,
            headers={REPLAYED_HEADER: "true"},
        )
    await response(scope, receive, send)


class _CapturedResponse:
    """The route's response, held back until its effect is committed."""

    def __init__(self) -> None:
        self.messages: list[Message] = []
        self.status = 500
        self.content_type = ""
        self.body = b""

    async def capture(self, message: Message) -> None:
        self.messages.append(message)
        if message["type"] == "http.response.start":
            self.status = message["status"]
            self.content_type = Headers(raw=message.get("headers", [])).get("content-type", "")
        elif message["type"] == "http.response.body":
            self.body += message.get("body", b"")

    async def send_to(self, send: Send) -> None:
        for message in self.messages:
            await send(message)
