"""Refuse NUL characters in any input with 422 naming the field.

PostgreSQL text cannot hold U+0000 (SQLite can), so a NUL in a name, an id or a
query parameter used to reach the database and come back as a 500 on one backend
only (found by Schemathesis). No field of the platform has a use for it: the request
is refused at the door, before any route, the same on every backend and service.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from fastapi import FastAPI, Request, Response
from fastapi.responses import JSONResponse

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


async def _nul_in_request(request: Request) -> str | None:
    if NUL in request.url.path:
        return "path"
    for name, value in request.query_params.multi_items():
        if NUL in name or NUL in value:
            return name
    body = await request.body()
    if b"\\u0000" not in body and b"\x00" not in body:
        return None
    try:
        return nul_field(json.loads(body))  # `\\u0000` (an escaped backslash) is fine
    except ValueError:
        return "body" if b"\x00" in body else None  # not JSON: the route decides


def install_input_guard(app: FastAPI, exempt: frozenset[str] = frozenset()) -> None:
    """Refuse NUL in the path, query or JSON body of every request but `exempt` paths
    (operations endpoints, which take no input and document no 422)."""

    @app.middleware("http")
    async def refuse_nul(request: Request, call_next: Callable[..., Any]) -> Response:
        field = None if request.url.path in exempt else await _nul_in_request(request)
        if field is None:
            response: Response = await call_next(request)
            return response
        return JSONResponse(
            error_body(
                "validation_error",
                f"{field}: {MESSAGE}",
                [{"field": field, "message": MESSAGE}],
            ),
            status_code=422,
        )
