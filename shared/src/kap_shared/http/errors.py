"""The platform's HTTP error shape: `{"error": {"code", "message", "details"?}}`.

- 422 names the field that is wrong (`validation_error`);
- 409 names the clinical or scheduling rule that forbids the action (its rule id);
- 401/403/404 say what is missing.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException


class ApiError(Exception):
    def __init__(self, status: int, code: str, message: str, details: Any = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.details = details


class NotFound(ApiError):
    def __init__(self, what: str, ident: str) -> None:
        super().__init__(404, "not_found", f"{what} {ident} not found")


class RuleViolation(ApiError):
    """A rule forbids the action: 409 naming the rule id (e.g. `KAP-1`)."""

    def __init__(self, rule_id: str, message: str, details: Any = None) -> None:
        super().__init__(409, rule_id, f"{rule_id}: {message}", details)
        self.rule_id = rule_id


class InvalidField(ApiError):
    """422 for a field whose value is well-formed but not acceptable."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(
            422, "validation_error", f"{field}: {message}", [{"field": field, "message": message}]
        )


def error_body(code: str, message: str, details: Any = None) -> dict[str, Any]:
    error: dict[str, Any] = {"code": code, "message": message}
    if details is not None:
        error["details"] = details
    return {"error": error}


def _field_path(loc: tuple[Any, ...] | list[Any]) -> str:
    """`phq9[3]`, `vitals.bp_systolic`: integrators name fields, not FastAPI locations."""
    parts = list(loc)
    if parts and parts[0] in ("body", "query", "path", "header") and len(parts) > 1:
        parts = parts[1:]
    path = ""
    for part in parts:
        path += f"[{part}]" if isinstance(part, int) else (f".{part}" if path else str(part))
    return path or "body"


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def _api_error(_: Request, exc: ApiError) -> JSONResponse:
        return JSONResponse(error_body(exc.code, exc.message, exc.details), status_code=exc.status)

    @app.exception_handler(RequestValidationError)
    async def _validation(_: Request, exc: RequestValidationError) -> JSONResponse:
        details = [
            {"field": _field_path(e.get("loc", ())), "message": e.get("msg", "invalid")}
            for e in exc.errors()
        ]
        summary = "; ".join(f"{d['field']}: {d['message']}" for d in details)
        return JSONResponse(error_body("validation_error", summary, details), status_code=422)

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        codes = {
            401: "unauthenticated",
            403: "forbidden",
            404: "not_found",
            405: "method_not_allowed",
        }
        return JSONResponse(
            error_body(codes.get(exc.status_code, "http_error"), str(exc.detail)),
            status_code=exc.status_code,
            headers=getattr(exc, "headers", None),
        )
