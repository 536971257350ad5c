"""Checks of what every service exposes (CONTRACT section 4: /healthz, /readyz,
/metrics, /asyncapi, /docs and the OpenAPI's error statuses) and of how it starts with
a RULES_FILE, shared by the services' unit tests so that each service's test states
only what is its own."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable, Container, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar, TypeVar

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from pydantic import ValidationError

from .events import EVENTS_BY_TOPIC
from .settings import ServiceSettings
from .testing import BAD_CREDENTIALS, TEST_SECRET, assert_openapi_errors, bad_rules_files

S = TypeVar("S", bound=ServiceSettings)

# The operational endpoints and their documented error statuses: /readyz answers 503
# until the broker and the database answer.
OPERATIONAL_ENDPOINTS: dict[str, set[int]] = {
    "GET /healthz": set(),
    "GET /readyz": {503},
    "GET /metrics": set(),
    "GET /asyncapi": set(),
}
# Every authenticated endpoint: 401 (no token), 403 (role, site, '*' claim), 422 (input),
# 503 (not ready); the use cases add 404 (unknown id) and 409 (a rule refuses, or an
# Idempotency-Key reused with another body: `idempotency_key_reused`).
API_ERRORS: frozenset[int] = frozenset({401, 403, 422, 503})


def assert_openapi_documents(client: TestClient, api: Mapping[str, Iterable[int]]) -> None:
    """/openapi.json lists exactly the operational endpoints plus `api` (operation ->
    error statuses), every error with the platform's error schema."""
    response = client.get("/openapi.json")
    assert response.status_code == 200
    expected = {**OPERATIONAL_ENDPOINTS, **{op: set(codes) for op, codes in api.items()}}
    assert_openapi_errors(response.json(), expected)


def assert_healthz_ok(client: TestClient) -> None:
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def assert_not_ready_without_broker(client: TestClient) -> None:
    """/readyz is 503 while the broker is unreachable, and says which check failed."""
    response = client.get("/readyz")
    assert response.status_code == 503
    assert response.json() == {"ready": False, "checks": {"broker": False, "database": True}}


def metrics_text(client: TestClient) -> str:
    """The Prometheus text of /metrics, after checking it is one."""
    response = client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    text: str = response.text
    assert "# TYPE kap_outbox_backlog gauge" in text
    return text


def metric_value(text: str, sample: str) -> float | None:
    """The value of the unlabelled sample `sample` in Prometheus text, None if absent."""
    found = re.search(rf"^{re.escape(sample)} (\S+)$", text, re.MULTILINE)
    return float(found.group(1)) if found else None


def asyncapi_document(client: TestClient) -> tuple[set[str], set[str]]:
    """(the topic addresses, the channel names = event types) of a 3.x /asyncapi."""
    response = client.get("/asyncapi")
    assert response.status_code == 200
    document: dict[str, Any] = response.json()
    assert document["asyncapi"].startswith("3.")
    addresses = {channel["address"] for channel in document["channels"].values()}
    return addresses, set(document["channels"])


def event_types_on(*topics: str) -> set[str]:
    """The event types the contract carries on `topics` (shared/tests/test_events.py
    checks that table against CONTRACT section 2)."""
    return {cls.model_fields["event_type"].default for t in topics for cls in EVENTS_BY_TOPIC[t]}


def openapi_paths(client: TestClient) -> dict[str, Any]:
    """The paths of /openapi.json, after checking /docs renders."""
    assert client.get("/docs").status_code == 200
    response = client.get("/openapi.json")
    assert response.status_code == 200
    paths: dict[str, Any] = response.json()["paths"]
    return paths


def start_with_rules(
    settings_cls: type[S], build: Callable[[S], FastAPI], tmp_path: Path, rules: dict[str, Any]
) -> FastAPI:
    """Build the service as it starts with `rules` as its RULES_FILE; a bad file raises
    the settings' `ValidationError` here, at start-up."""
    path = tmp_path / "rules.json"
    path.write_text(json.dumps(rules))
    return build(settings_cls(var_dir=tmp_path, kap_jwt_secret=TEST_SECRET, rules_file=path))


class OperationalEndpoints:
    """The checks every service passes the same way; each service's test module
    subclasses it as `TestOperationalEndpoints` (pytest collects the subclass) and sets
    `api` to its operations and the error statuses each documents
    (`"POST /patients": API_ERRORS | {409}`)."""

    api: ClassVar[Mapping[str, Iterable[int]]] = {}

    def test_healthz_200(self, client: TestClient) -> None:
        assert_healthz_ok(client)

    def test_readyz_503_while_the_broker_is_unreachable(self, client: TestClient) -> None:
        assert_not_ready_without_broker(client)

    def test_docs_render(self, client: TestClient) -> None:
        assert openapi_paths(client)

    def test_metrics_say_how_long_sqlite_writers_waited(self, client: TestClient) -> None:
        """On SQLite (the tests' database): each writing transaction's wait for the
        process's writer lock (start-up creates the tables: some soon), what the WAL holds
        that is not yet copied, and the checkpoint passes (none yet at this size)."""
        for _ in range(100):  # poll: the schema is created in the background
            text = metrics_text(client)
            if (metric_value(text, "kap_sqlite_writer_wait_seconds_count") or 0) >= 1:
                break
            time.sleep(0.05)
        else:
            pytest.fail("no SQLite writer wait was counted")
        assert (metric_value(text, "kap_sqlite_wal_uncopied_bytes") or 0) > 0
        assert "# TYPE kap_sqlite_checkpoint_seconds histogram" in text

    def test_openapi_documents_every_error_status_with_the_error_schema(
        self, client: TestClient
    ) -> None:
        """Exactly the operational endpoints and `api`, each status it can return listed
        with the platform's error schema `{"error": {"code", "message", "details"?}}`
        (issue 9 section 5)."""
        assert_openapi_documents(client, self.api)


class RulesFileAtStartUp:
    """RULES_FILE checks every service with rules passes the same way; a service's test
    module subclasses it as `TestRulesFile`, naming its settings, its `build` and `key`,
    a rule of its own whose minimum is above 0."""

    settings: ClassVar[type[ServiceSettings]]
    build: ClassVar[Callable[[Any], FastAPI]]
    key: ClassVar[str]

    @pytest.mark.parametrize("case", [case for case, _, _ in bad_rules_files("KEY")])
    def test_a_bad_rules_file_fails_at_start_up_naming_the_key(
        self, tmp_path: Path, case: str
    ) -> None:
        document, named = {c: (d, n) for c, d, n in bad_rules_files(self.key)}[case]
        with pytest.raises(ValidationError, match=re.escape(named)):
            start_with_rules(self.settings, type(self).build, tmp_path, document)

    def test_a_valid_override_at_the_boundary_starts(self, tmp_path: Path) -> None:
        overrides = {"sites": {"site-x": {self.key: 1}}}
        start_with_rules(self.settings, type(self).build, tmp_path, overrides)


def assert_idempotency_key_documented(client: TestClient, paths: Iterable[str]) -> None:
    """Each POST of `paths` documents the `Idempotency-Key` header (issue 9 section 6)."""
    documented = openapi_paths(client)
    for path in paths:
        names = [p["name"] for p in documented[path]["post"].get("parameters", [])]
        assert "Idempotency-Key" in names, path


def assert_error(response: Any, status: int, code: str) -> dict[str, Any]:
    """The response is the platform's error `status` with `code` and a message; the
    error object (for its details)."""
    assert response.status_code == status, response.text
    error: dict[str, Any] = response.json()["error"]
    assert error["code"] == code, error
    assert error["message"]
    return error


# One endpoint of a service's auth tests: method, path and JSON body (None: no body).
Endpoint = tuple[str, str, dict[str, Any] | None]


def call(client: TestClient, endpoint: Endpoint, headers: Mapping[str, str] | None) -> Any:
    method, url, body = endpoint
    return client.request(method, url, json=body, headers=dict(headers or {}))


def assert_401_stores_nothing(
    client: TestClient,
    endpoint: Endpoint,
    headers: Mapping[str, str],
    counts: Callable[[], dict[str, int]],
) -> None:
    """A request without a valid token is 401 `unauthenticated` with the Bearer challenge
    (CONTRACT section 4), and `counts` (the service's table row counts) do not move."""
    before = counts()
    response = call(client, endpoint, headers)
    assert_error(response, 401, "unauthenticated")
    assert response.headers["www-authenticate"] == "Bearer"
    assert counts() == before


class BadTokens:
    """Every endpoint a service's auth tests name answers each of BAD_CREDENTIALS with
    401 and stores nothing. The test module subclasses it as `TestBadTokens`, sets
    `names` (keys of its `endpoints` fixture, name -> Endpoint) and has the fixtures
    `client`, `endpoints` and `counts` (the service's table row counts)."""

    names: ClassVar[Sequence[str]] = ()

    def pytest_generate_tests(self, metafunc: pytest.Metafunc) -> None:
        if "name" in metafunc.fixturenames:
            metafunc.parametrize("name", list(self.names))

    @pytest.mark.parametrize("credentials", list(BAD_CREDENTIALS))
    def test_401_without_a_valid_token(
        self,
        client: TestClient,
        endpoints: Mapping[str, Endpoint],
        counts: Callable[[], dict[str, int]],
        name: str,
        credentials: str,
    ) -> None:
        assert_401_stores_nothing(client, endpoints[name], BAD_CREDENTIALS[credentials], counts)


def assert_wildcard_sites_only_for_admin(
    response: Any, role: str, admin_statuses: Container[int] | None = None
) -> None:
    """CONTRACT 6.4: a token whose sites claim is '*' reaches every site for an admin (the
    request passes authorization; with `admin_statuses`, answers one of them) and is 403
    `forbidden` for any other role."""
    if role != "admin":
        assert_error(response, 403, "forbidden")
    elif admin_statuses is None:
        assert response.status_code not in (401, 403), response.text
    else:
        assert response.status_code in admin_statuses, response.text


def assert_422_naming(response: Any, field: str) -> dict[str, Any]:
    """A 422 `validation_error` whose details name `field`; the error object."""
    error = assert_error(response, 422, "validation_error")
    named = [d["field"] for d in error["details"]]
    assert field in named, f"expected {field!r} in {named}"
    return error
