"""NUL characters are refused with 422 naming the field, before any route runs
(PostgreSQL text cannot hold them; found by Schemathesis as 500s)."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from kap_shared.http.errors import install_error_handlers
from kap_shared.http.input_guard import install_input_guard, nul_field


def build() -> tuple[FastAPI, list[Any]]:
    app = FastAPI()
    seen: list[Any] = []
    install_error_handlers(app)
    install_input_guard(app, exempt=frozenset({"/healthz"}))

    @app.post("/things/{thing_id}")
    def create(thing_id: str, body: dict[str, Any], q: str | None = None) -> dict[str, str]:
        seen.append((thing_id, body, q))
        return {"ok": thing_id}

    @app.get("/healthz")
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    return app, seen


@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        ("/things/a", {"name": "Ad\u0000a"}, "name"),
        ("/things/a", {"contact": {"email": "a\u0000@x.org"}}, "contact.email"),
        ("/things/a", {"phq9": [1, 2, "\u0000"]}, "phq9[2]"),
        ("/things/a", {"ke\u0000y": 1}, "ke\u0000y"),
        ("/things/a?q=%00", {"name": "fine"}, "q"),
        ("/things/a%00b", {"name": "fine"}, "path"),
    ],
)
def test_nul_anywhere_is_422_naming_the_field_and_nothing_runs(
    path: str, body: dict[str, Any], field: str
) -> None:
    app, seen = build()
    response = TestClient(app).post(path, json=body)
    assert response.status_code == 422, response.text
    error = response.json()["error"]
    assert error["code"] == "validation_error"
    assert error["details"] == [
        {"field": field, "message": "NUL characters (U+0000) are not accepted"}
    ]
    assert seen == []


def test_clean_requests_reach_the_route_with_their_body() -> None:
    app, seen = build()
    response = TestClient(app).post("/things/a?q=x", json={"name": "Ada \\u0000 escaped"})
    assert response.status_code == 200, response.text
    assert seen == [("a", {"name": "Ada \\u0000 escaped"}, "x")]
    assert TestClient(app).get("/healthz?x=%00").status_code == 200  # exempt


def test_nul_field_finds_the_first_path() -> None:
    assert nul_field({"a": [{"b": "ok"}, {"c": "x\u0000"}]}) == "a[1].c"
    assert nul_field({"a": "ok", "n": 3, "none": None}) is None
    assert nul_field("\u0000") == "body"
