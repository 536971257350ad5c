"""Refuse NUL characters in any input with 422 naming the field.

PostgreSQL text cannot hold U+0000 (SQLite can), so a NUL in a name, an id or a
query parameter used to reach the database and come back as a 500 on one backend
only (found by Schemathesis). No field of the platform has a use for it: the request
is refused at the door, before any route, the same on every backend and service.
"""

from __future__ import annotations

import json
from typing import Any

from fastapi import FastAPI
from fastapi.responses import JSONResponse
from starlette.datastructures import QueryParams
from starlette.types import ASGIApp, Receive, Scope, Send

from .asgi import buffered_body
from .errors import error_body

NUL = "\x00"
MESSAGE = "NUL characters (U+0000) are not accepted"


def nul_field(value: Any, path: str = "") -> str | None:
    """The path (`contact.email`, `phq9[3]`) of the first string or key holding a NUL."""
    if isinstance(value, str):
        return (path or "body") if NUL in value else None
    if isinstance(value, dict):
        for key, item in value.items():
            child = f"{path}.{key}" if path else str(key)
            if NUL in str(key):
                return child
            if found := nul_field(item, child):
                return found
    if isinstance(value, list):
        for index, item in enumerate(value):
            if found := nul_field(item, f"{path}[{index}]"):
                return found
    return None


def _nul_in_request(scope: Scope, body: bytes) -> str | None:
    if NUL in scope["path"]:
        return "path"
    for name, value in QueryParams(scope.get("query_string", b"")).multi_items():
        if NUL in name or NUL in value:
            return name
    if b"\\u0000" not in body and b"\x00" not in body:
        return None
    try:
        return nul_field(json.loads(body))  # `\\u0000` (an escaped backslash) is fine
    except ValueError:
        return "body" if b"\x00" in body else None  # not JSON: the route decides


class NulGuard:
    """The ASGI middleware behind `install_input_guard`."""

    def __init__(self, app: ASGIApp, exempt: frozenset[str] = frozenset()) -> None:
        self.app = app
        self.exempt = exempt

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in self.exempt:
            await self.app(scope, receive, send)
            return
        body, receive = await buffered_body(receive)
        field = _nul_in_request(scope, body)
        if field is None:
            await self.app(scope, receive, send)
            return
        response = JSONResponse(
            error_body(
                "validation_error",
                f"{field}: {MESSAGE}",
                [{"field": field, "message": MESSAGE}],
            ),
            status_code=422,
        )
        await response(scope, receive, send)


def install_input_guard(app: FastAPI, exempt: frozenset[str] = frozenset()) -> None:
    """Refuse NUL in the path, query or JSON body of every request but `exempt` paths
    (operations endpoints, which take no input and document no 422)."""
    app.add_middleware(NulGuard, exempt=exempt)
